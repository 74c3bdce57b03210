"""The parent/child channel: named messages, typed waits, a closed end, a deadline."""

from __future__ import annotations

import os
import time

import pytest

from runner.channel import Channel, ChannelClosed, Message, PeerFailed
from runner.deadline import Deadline, NotReady
from runner.errors import RunnerError


@pytest.fixture
def pair():
    ours, theirs = Channel.pair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_wait_for_returns_the_payload(pair):
    ours, theirs = pair
    theirs.send(Message.EXITED, 7 << 8)
    assert ours.wait_for(Message.EXITED, Deadline(5)) == str(7 << 8)


def test_messages_keep_their_boundaries(pair):
    ours, theirs = pair
    theirs.send(Message.UNSHARED)
    theirs.send(Message.STARTED, 2)
    assert ours.wait_for(Message.UNSHARED, Deadline(5)) == ""
    assert ours.wait_for(Message.STARTED, Deadline(5)) == "2"


def test_error_from_the_other_side_is_raised_with_its_text(pair):
    ours, theirs = pair
    theirs.send_error(RunnerError('failed to mount "proc": Operation not permitted'))
    with pytest.raises(PeerFailed, match='^failed to mount "proc": Operation not permitted$'):
        ours.wait_for(Message.UNSHARED, Deadline(5))


def test_unexpected_message_is_a_protocol_error(pair):
    ours, theirs = pair
    theirs.send(Message.MAPPED)
    with pytest.raises(RunnerError, match="sent MAPPED instead of UNSHARED"):
        ours.wait_for(Message.UNSHARED, Deadline(5))


def test_closed_channel_means_the_other_side_died():
    ours, theirs = Channel.pair()
    pid = os.fork()
    if pid == 0:  # a child that dies without a word
        os._exit(3)
    theirs.close()
    _, status = os.waitpid(pid, 0)
    with pytest.raises(ChannelClosed, match="the container closed the channel while waiting for UNSHARED"):
        ours.wait_for(Message.UNSHARED, Deadline(5))
    ours.close()


def test_send_to_a_closed_channel(pair):
    ours, theirs = pair
    theirs.close()
    with pytest.raises(ChannelClosed, match="before MAPPED could be sent"):
        ours.send(Message.MAPPED)


def test_deadline_bounds_the_wait(pair):
    ours, _ = pair
    started = time.monotonic()
    with pytest.raises(NotReady, match=r"^timed out after 0\.05 s waiting for UNSHARED from the container"):
        ours.wait_for(Message.UNSHARED, Deadline(0.05))
    assert time.monotonic() - started < 1


def test_drain_reads_what_is_queued_without_blocking(pair):
    ours, theirs = pair
    assert ours.drain() == []
    theirs.send(Message.STARTED, 2)
    theirs.send(Message.EXITED, 0)
    theirs.close()
    assert ours.drain() == [(Message.STARTED, "2"), (Message.EXITED, "0")]


def test_an_error_naming_a_command_that_is_not_utf8_still_arrives(pair):
    # `runner start -- $'\xff'`: argv[0] is the surrogate "\udcff"; the child's "failed to
    # execute" could not be encoded, was dropped, and runner exited 127 without a word.
    ours, theirs = pair
    theirs.send_error(RunnerError('failed to execute "\udcff": No such file or directory'))
    with pytest.raises(PeerFailed, match=r'^failed to execute "\\udcff": No such file or directory$'):
        ours.wait_for(Message.STARTED, Deadline(5))
