"""One rtnetlink socket: a request out, its replies and its ACK back, matched by sequence number.

Every request carries NLM_F_ACK, so a change is confirmed (or refused, with the
kernel's errno and its extended-ACK message) before the next one is sent. A
socket stays bound to the network namespace it was created in: for another
netns, a short-lived thread enters it with setns(2), creates the socket, and
ends; the caller's thread never leaves its own namespace.
"""

from __future__ import annotations

import _thread
import errno as errnos
import os
import _socket as socket  # not socket.py: its selectors, enum wrappers and class cost each CNI call ~2.5 ms

from .wire import (NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK, NETLINK_ROUTE, NLM_F_ACK,
                   NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE,
                   NLMSG_ERROR, NLMSGERR, NLMSGERR_ATTR_MSG, NLMSGHDR, SOL_NETLINK, align, as_str, attrs)

CLONE_NEWNET = 0x40000000
BUFFER = 1 << 16  # a dump comes in datagrams of at most 32 KiB; one link's reply is a few KiB
DUMP_TRIES = 3  # a dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is run again


class NetlinkError(Exception):
    """The kernel refused a request: its errno, and what it said (extended ACK), if anything."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.errno, self.message = code, message
        text = os.strerror(code)
        super().__init__(f"{text} ({message})" if message else text)


Reply = tuple[int, bytes]  # message type, payload (the bytes after the nlmsghdr)


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.seq = sock, 0
        self._buffer = bytearray(BUFFER)

    @classmethod
    def open(cls) -> "Channel":
        """A socket in the calling thread's network namespace."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK):
                try:
                    sock.setsockopt(SOL_NETLINK, option, 1)
                except OSError:  # an older kernel: plainer errors, dumps filtered here instead
                    pass
            sock.bind((0, 0))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    @classmethod
    def open_in(cls, netns_fd: int) -> "Channel":
        """A socket in the network namespace ``netns_fd`` refers to (see the module's docstring)."""
        outcome: list[object] = []
        done = _thread.allocate_lock()
        done.acquire()

        def in_thread() -> None:
            try:
                _setns(netns_fd)
                outcome.append(cls.open())
            except BaseException as exc:  # handed to the caller's thread
                outcome.append(exc)
            finally:
                done.release()  # the thread ends here, and its netns with it

        _thread.start_new_thread(in_thread, ())
        done.acquire()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        assert isinstance(outcome[0], Channel)
        return outcome[0]

    def close(self) -> None:
        self.sock.close()

    # --- requests ------------------------------------------------------------------
    def request(self, kind: int, body: bytes, flags: int = 0) -> list[Reply]:
        """Send one request; return its replies (a GET's answer) once the kernel ACKs it."""
        replies, _ = self._exchange(kind, body, flags)
        return replies

    def dump(self, kind: int, body: bytes) -> list[Reply]:
        """Every object a dump request matches; run again if a change interrupted it."""
        for _ in range(DUMP_TRIES):
            replies, interrupted = self._exchange(kind, body, NLM_F_DUMP)
            if not interrupted:
                break
        return replies

    def _exchange(self, kind: int, body: bytes, flags: int) -> tuple[list[Reply], bool]:
        self.seq = self.seq % 0xFFFFFFFF + 1
        seq = self.seq
        self.sock.send(NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0)
                       + body)
        replies: list[Reply] = []
        interrupted = False
        while True:
            size = self.sock.recv_into(self._buffer, BUFFER, socket.MSG_TRUNC)
            if size > BUFFER:
                raise NetlinkError(errnos.EMSGSIZE, f"a reply of {size} bytes is larger than the buffer")
            data = bytes(self._buffer[:size])
            offset = 0
            while offset + NLMSGHDR.size <= size:
                length, mtype, mflags, mseq, _ = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size or offset + length > size:
                    raise NetlinkError(errnos.EBADMSG, "a malformed reply")
                start, end = offset + NLMSGHDR.size, offset + length
                offset += align(length)
                if mseq != seq:  # left over from a request that was interrupted: not ours
                    continue
                interrupted |= bool(mflags & NLM_F_DUMP_INTR)
                if mtype == NLMSG_ERROR:
                    code = NLMSGERR.unpack_from(data, start)[0]
                    if code:
                        raise NetlinkError(-code, _ext_ack(data, start, end, mflags, inner=True))
                    return replies, interrupted  # the ACK: the request is done
                if mtype == NLMSG_DONE:
                    code = NLMSGERR.unpack_from(data, start)[0] if end - start >= NLMSGERR.size else 0
                    if code < 0:
                        raise NetlinkError(-code, _ext_ack(data, start, end, mflags, inner=False))
                    return replies, interrupted  # a dump ends here (the kernel ACKs no dump)
                if mtype > NLMSG_DONE:
                    replies.append((mtype, data[start:end]))


def _ext_ack(data: bytes, start: int, end: int, flags: int, *, inner: bool) -> str | None:
    """The extended ACK's message: after the errno, and in an error after the request's header too."""
    if not flags & NLM_F_ACK_TLVS:
        return None
    offset = start + NLMSGERR.size
    if inner:
        request_length = NLMSGHDR.unpack_from(data, offset)[0]
        offset += NLMSGHDR.size if flags & NLM_F_CAPPED else align(request_length)
    return as_str(attrs(data[:end], offset).get(NLMSGERR_ATTR_MSG))


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    import ctypes  # the symbol from the libraries already loaded: no ldconfig, no soname guessed

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns(CLONE_NEWNET): {os.strerror(code)}")
