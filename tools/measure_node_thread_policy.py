"""ONNX Runtime's thread policy as the node meets it: frames at a camera's pace (one every 1/30 s), not back
to back. For each policy (intra-op threads, spin-waiting on or off) the 1280x720 demo pipeline runs in
alternating rounds, and each round reports the Segmenter's time per frame and the process's CPU per
second of the round (the cores it burns between frames included):

    PYTHONPATH=$PWD .venv/bin/python tools/measure_node_thread_policy.py [--rounds 4] [--seconds 3]

The node runs `threads` (parameter, 0: ONNX Runtime's default) with spinning off (backends.create_backend,
spin_wait=False); `process` and the offline bench keep spinning on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import OutputSelection, Segmenter
from seg_perception.synthetic.scenes import generate_scene

POLICIES = ((0, True), (0, False), (1, True), (1, False), (2, False))  # (intra-op threads, spin-wait)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args()
    spec = load_model_spec(default_spec_path())
    frame = generate_scene(1, 1280, 720).image
    want = OutputSelection(drivable=True)
    segmenters = {}
    for threads, spin in POLICIES:
        seg = Segmenter(spec, backend="onnxruntime", threads=threads, backend_options={"spin_wait": spin})
        seg.warm_up(1280, 720)
        segmenters[(threads, spin)] = seg
    ms: dict[tuple[int, bool], list[float]] = {p: [] for p in POLICIES}
    cpu: dict[tuple[int, bool], list[float]] = {p: [] for p in POLICIES}
    period = 1.0 / args.rate
    for _ in range(args.rounds):
        for policy, seg in segmenters.items():
            time.sleep(0.3)  # the previous policy's threads stop spinning
            frames = []
            wall, cpu0 = time.monotonic(), time.process_time()
            due = wall
            while time.monotonic() - wall < args.seconds:
                start = time.perf_counter()
                seg.segment(frame, "RGB", want)
                frames.append((time.perf_counter() - start) * 1e3)
                due += period
                time.sleep(max(0.0, due - time.monotonic()))
            cpu[policy].append(100.0 * (time.process_time() - cpu0) / (time.monotonic() - wall))
            ms[policy].append(float(np.median(frames)))
    for policy in POLICIES:
        threads, spin = policy
        v = ms[policy]
        sys.stdout.write(
            f"threads {threads or 'default'} spin {'on ' if spin else 'off'}: segment {np.median(v):6.2f} ms "
            f"(rounds {min(v):.2f}-{max(v):.2f}), CPU {np.median(cpu[policy]):4.0f} % at {args.rate:.0f} Hz\n"
        )
    sys.stdout.write(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    for seg in segmenters.values():
        seg.close()


if __name__ == "__main__":
    main()
