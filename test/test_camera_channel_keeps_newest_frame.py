"""The one-slot buffer of a camera, tested where it lives: a slow worker gets the newest frame, never a
queue, and every replaced or lost frame is counted exactly. No DDS, no sleeps: the worker is held on an
event while frames arrive."""

from __future__ import annotations

import threading
from typing import Any

from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from seg_perception.ros.camera_channel import CameraChannel
from seg_perception.ros.messages import diagnostics_message

WAIT_S = 10.0  # generous deadline for a thread handshake; the tests never wait on time otherwise


def _frame(stamp: int) -> Image:
    msg = Image()
    msg.header.stamp.sec = stamp
    return msg


def _info(sequence: int, gid: bytes = b"writer-1") -> Any:
    return {"publication_sequence_number": sequence, "publisher_gid": {"data": gid}}


class _SlowWorker:
    """Takes frames from the channel like the node's worker; holds the first one until released."""

    def __init__(self, channel: CameraChannel, cond: threading.Condition, frames: int) -> None:
        self.channel, self.cond, self.frames = channel, cond, frames
        self.processed: list[int] = []
        self.busy = threading.Event()  # set while the first frame is "being segmented"
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in range(self.frames):
            with self.cond:
                if not self.cond.wait_for(lambda: self.channel.pending is not None, WAIT_S):
                    return
                pending = self.channel.take()
            assert pending is not None
            self.processed.append(int(pending.msg.header.stamp.sec))
            if len(self.processed) == 1:
                self.busy.set()
                self.release.wait(WAIT_S)

    def join(self) -> None:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "worker did not finish"


def test_frames_arriving_while_the_worker_is_busy_replace_the_waiting_one() -> None:
    channel, cond = CameraChannel("camera", ""), threading.Condition()
    worker = _SlowWorker(channel, cond, frames=2)
    channel.store(_frame(0), _info(1), cond)
    assert worker.busy.wait(WAIT_S), "worker never took the first frame"
    burst = list(range(1, 21))
    for i in burst:  # all of these arrive while frame 0 is still being processed
        channel.store(_frame(i), _info(i + 1), cond)
    worker.release.set()
    worker.join()

    assert worker.processed == [0, burst[-1]]  # the newest frame wins; 1..19 are never processed
    assert channel.pending is None
    stats = channel.stats.snapshot()
    assert stats.received == 1 + len(burst)
    assert stats.replaced == len(burst) - 1
    assert stats.lost_in_transport == 0
    assert stats.dropped == len(burst) - 1


def test_an_idle_worker_gets_every_frame_and_nothing_is_counted_as_dropped() -> None:
    channel, cond = CameraChannel("camera", ""), threading.Condition()
    for i in range(5):
        channel.store(_frame(i), _info(i + 1), cond)
        with cond:
            taken = channel.take()
        assert taken is not None and int(taken.msg.header.stamp.sec) == i
        with cond:
            assert channel.take() is None  # the slot holds one frame, and taking empties it
    stats = channel.stats.snapshot()
    assert (stats.received, stats.replaced, stats.lost_in_transport, stats.dropped) == (5, 0, 0, 0)


def test_gaps_in_publication_sequence_numbers_are_counted_per_publisher() -> None:
    channel, cond = CameraChannel("camera", ""), threading.Condition()
    for seq, gid in ((1, b"a"), (2, b"a"), (5, b"a"), (10, b"b"), (6, b"a"), (13, b"b")):
        channel.store(_frame(seq), _info(seq, gid), cond)
        with cond:
            channel.take()
    stats = channel.stats.snapshot()
    # writer a: 1, 2, (3, 4 lost), 5, 6; writer b: 10 (first seen: nothing known before it), (11, 12 lost), 13
    assert stats.lost_in_transport == 4
    assert stats.replaced == 0
    assert stats.received == 6
    assert stats.dropped == 4
    channel.store(_frame(99), {}, cond)  # no sequence information (e.g. an intra-process message)
    assert channel.stats.snapshot().lost_in_transport == 4


def test_without_publisher_ids_gaps_are_counted_while_the_topic_has_one_publisher() -> None:
    """Jazzy's rclpy gives the sequence number without publisher_gid: one publisher's gaps still count, and
    while several publishers interleave (their sequences would read as false gaps) /diagnostics says losses
    are not counted, never a silent 0; once one publisher is left, counting resumes. The count stays an
    integer throughout."""
    channel, cond = CameraChannel("camera", ""), threading.Condition()
    publishers = 1
    channel.publisher_count = lambda: publishers
    for seq in (1, 2, 6, 7):  # 3, 4, 5 lost
        channel.store(_frame(seq), {"publication_sequence_number": seq}, cond)
    assert channel.stats.snapshot().lost_in_transport == 3
    assert _loss_values(channel) == {
        "frames_lost_in_transport": "3",
        "frames_lost_in_transport.counted": "true",
        "frames_lost_in_transport.not_counted_frames": "0",
    }
    publishers = 2
    for seq in (1, 8, 2, 9):  # a second publisher's sequence interleaves with the first's
        channel.store(_frame(seq), {"publication_sequence_number": seq}, cond)
    snap = channel.stats.snapshot()
    assert (snap.lost_in_transport, snap.loss_not_counted, snap.received) == (3, 4, 8)
    assert snap.dropped == snap.replaced + 3  # (nothing took the frames: each replaced the one before)
    assert _loss_values(channel) == {
        "frames_lost_in_transport": "3",
        "frames_lost_in_transport.counted": "false",
        "frames_lost_in_transport.not_counted_frames": "4",
        "frames_lost_in_transport.why": "several publishers on the input; this rclpy does not name a frame's publisher",
    }
    publishers = 1
    for seq in (20, 23):  # the one left: nothing known before 20, then 21 and 22 lost
        channel.store(_frame(seq), {"publication_sequence_number": seq}, cond)
    assert channel.stats.snapshot().lost_in_transport == 5
    assert _loss_values(channel) == {  # counted again; the two-publisher stretch's frames stay reported
        "frames_lost_in_transport": "5",
        "frames_lost_in_transport.counted": "true",
        "frames_lost_in_transport.not_counted_frames": "4",
    }


def test_with_publisher_ids_several_publishers_are_counted() -> None:
    """Kilted's rclpy names each frame's publisher: two publishers' losses count, and nothing is "not counted"."""
    channel, cond = CameraChannel("camera", ""), threading.Condition()
    channel.publisher_count = lambda: 2
    for seq, gid in ((1, b"a"), (1, b"b"), (3, b"a"), (2, b"b")):
        channel.store(_frame(seq), _info(seq, gid), cond)
    assert channel.stats.snapshot().loss_not_counted == 0
    assert _loss_values(channel) == {
        "frames_lost_in_transport": "1",
        "frames_lost_in_transport.counted": "true",
        "frames_lost_in_transport.not_counted_frames": "0",
    }


def _diagnostics(channel: CameraChannel) -> dict[str, str]:
    out = diagnostics_message(Time(), "seg", "camera", channel.stats.snapshot(), {}, stale=False)
    return {kv.key: kv.value for kv in out.status[0].values}


def _loss_values(channel: CameraChannel) -> dict[str, str]:
    return {k: v for k, v in _diagnostics(channel).items() if k.startswith("frames_lost_in_transport")}
