"""The socketpair runner and its container talk over, with a closed set of messages.

Made before fork(), so both ends exist in both processes; each side closes the
end it does not use. The conversation, in order::

    child  -> parent   UNSHARED        I am in my new namespaces: map my ids
    parent -> child    MAPPED          uid_map and gid_map are written
    parent -> init     NETWORK_READY   the network is configured (at once with --no-net)
    init   -> parent   STARTED <pid>   the command runs, as <pid> in the container
    init   -> parent   EXITED <status> the command ended, with this wait status
    any    -> other    ERROR <text>    I failed, and why; I exit now

SOCK_SEQPACKET keeps message boundaries, so one recv() is one message. When
every copy of the other end is closed, recv() returns b"": the other side
died. The channel cannot say how; the waiter asks waitpid() (see parent.py).
"""

from __future__ import annotations

import _socket  # socket.py costs ~3 ms at start-up (selectors, four IntEnum conversions)
from enum import Enum

from .deadline import Deadline, NotReady
from .errors import RunnerError

MAX_MESSAGE = 65536


class Message(Enum):
    UNSHARED = "UNSHARED"
    MAPPED = "MAPPED"
    NETWORK_READY = "NETWORK_READY"
    STARTED = "STARTED"
    EXITED = "EXITED"
    ERROR = "ERROR"


class ChannelClosed(RunnerError):
    """The other side closed its end: it exited or was killed."""


class PeerFailed(RunnerError):
    """The other side sent ERROR; the message is its own error line."""


class Channel:
    def __init__(self, sock: _socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer  # who is at the other end, for error messages

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        """(runner's end, the container's end). Both are close-on-exec, as Python makes every fd."""
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(ours, "the container"), cls(theirs, "runner")

    def send(self, message: Message, payload: object = "") -> None:
        try:
            # backslashreplace: a command named by bytes that are not UTF-8 (argv's surrogates) is still said
            self.sock.sendall(f"{message.value} {payload}".rstrip().encode(errors="backslashreplace"))
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed(f"{self.peer} closed the channel before {message.value} could be sent") from None

    def send_error(self, error: BaseException) -> None:
        """Tell the other side why we fail, if it still listens."""
        try:
            self.send(Message.ERROR, str(error) or type(error).__name__)
        except (ChannelClosed, OSError):
            pass

    def wait_for(self, expected: Message, deadline: Deadline) -> str:
        """Block until ``expected`` arrives and return its payload.

        ERROR from the other side raises :class:`PeerFailed`, a closed channel
        :class:`ChannelClosed`, the deadline :class:`NotReady`.
        """
        what = f"{expected.value} from {self.peer}"
        self.sock.settimeout(deadline.remaining(what))
        try:
            data = self.sock.recv(MAX_MESSAGE)
        except TimeoutError:
            raise NotReady(what, deadline.seconds) from None
        finally:
            self.sock.settimeout(None)
        if not data:
            raise ChannelClosed(f"{self.peer} closed the channel while waiting for {expected.value}")
        message, payload = parse(data)
        if message is Message.ERROR:
            raise PeerFailed(payload)
        if message is not expected:
            raise RunnerError(f"protocol error: {self.peer} sent {message.value} instead of {expected.value}")
        return payload

    def drain(self) -> list[tuple[Message, str]]:
        """The messages already queued, without blocking."""
        messages = []
        self.sock.setblocking(False)
        try:
            while data := self.sock.recv(MAX_MESSAGE):
                messages.append(parse(data))
        except (BlockingIOError, ConnectionResetError):
            pass
        finally:
            self.sock.setblocking(True)
        return messages

    def close_write(self) -> None:
        """Say we will send no more: the other side's recv() returns b"" once it has read
        what is queued, while we can still read what it sent."""
        try:
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def parse(data: bytes) -> tuple[Message, str]:
    name, _, payload = data.decode(errors="replace").partition(" ")
    try:
        return Message(name), payload
    except ValueError:
        raise RunnerError(f"protocol error: unknown message {name!r}") from None
