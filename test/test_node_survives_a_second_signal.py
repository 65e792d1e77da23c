"""A second signal during shutdown (Ctrl-C twice; `ros2 launch` forwarding one more SIGINT to the process group)
finishes the shutdown quietly: exit status 0, no traceback, while frames are still flowing."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from ros_harness import NodeProcess, Probe, image_msg, unique_domain_id
from tiny_models import smooth_image


@pytest.mark.parametrize(
    "first, second",
    [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGTERM)],
    ids=["int-int", "term-term", "int-term"],
)
def test_two_signals_a_tenth_of_a_second_apart_while_frames_flow(
    spec_path: Path, first: signal.Signals, second: signal.Signals
) -> None:
    domain = unique_domain_id()
    probe = Probe(domain, outputs=("labels",))
    node = NodeProcess(domain, {"model": str(spec_path), "backend": "onnxruntime"})
    flowing = threading.Event()
    stop = threading.Event()
    frame = smooth_image(360, 640, seed=5)

    def camera() -> None:  # 50 Hz, faster than the node answers on this machine: the worker is always busy
        k = 0
        while not stop.is_set():
            probe.image_pub.publish(image_msg(frame, "rgb8", 1_700_000_900_000_000_000 + k))
            k += 1
            time.sleep(0.02)

    sender = threading.Thread(target=camera, daemon=True)
    try:
        node.wait_for_log("subscribed to /camera/image")
        probe.wait_for_node_outputs()
        sender.start()
        probe.wait_until(lambda: len(probe.messages("labels")) >= 3, 20, "frames flowing")
        flowing.set()
        node.proc.send_signal(first)
        time.sleep(0.1)
        if node.proc.poll() is None:
            node.proc.send_signal(second)
        node.proc.wait(timeout=15)
    finally:
        stop.set()
        sender.join(timeout=5) if sender.is_alive() else None
        node.stop(timeout=5)  # kills it if still running
        probe.close()
    assert flowing.is_set()
    assert node.proc.returncode == 0, node.output
    assert "Traceback" not in node.output and "KeyboardInterrupt" not in node.output, node.output
