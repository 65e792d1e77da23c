"""Faults planted in Ray worker processes for the fleet tests (a Ray `worker_process_setup_hook`).

`install()` runs in every worker process of a job whose runtime_env names it; it wraps
`Segmenter.segment` so that, on the FIRE_AT_FRAME-th frame a process segments, a request file in
$SEG_FLEET_FAULT_DIR is acted on:
* `kill`: the first process to claim it (an atomic rename to `killed-<pid>`) kills itself with SIGKILL,
  mid-bag: its staged partial bag holds the frames before;
* `block`: every process that gets there writes `blocked-<pid>` and waits until `release` appears.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

FAULT_DIR_ENV = "SEG_FLEET_FAULT_DIR"
FIRE_AT_FRAME = 3
BLOCK_LIMIT_S = 300.0  # a blocked worker gives up waiting for `release` after this long


def install() -> None:
    from seg_perception.pipeline import Segmenter

    fault_dir = os.environ.get(FAULT_DIR_ENV)
    if not fault_dir or getattr(Segmenter.segment, "fault_injection", False):
        return
    real_segment = Segmenter.segment
    frames = [0]

    def segment(self: Segmenter, *args: Any, **kwargs: Any) -> Any:
        frames[0] += 1
        if frames[0] == FIRE_AT_FRAME:
            _fire(Path(fault_dir))
        return real_segment(self, *args, **kwargs)

    segment.fault_injection = True  # type: ignore[attr-defined]
    Segmenter.segment = segment  # type: ignore[method-assign]


def _fire(fault_dir: Path) -> None:
    pid = os.getpid()
    try:
        os.rename(fault_dir / "kill", fault_dir / f"killed-{pid}")
    except FileNotFoundError:
        pass
    else:
        os.kill(pid, signal.SIGKILL)
    if (fault_dir / "block").exists():
        (fault_dir / f"blocked-{pid}").touch()
        tick = threading.Event()  # never set: a bounded wait between looks at the file
        for _ in range(int(BLOCK_LIMIT_S / 0.05)):
            if (fault_dir / "release").exists():
                return
            tick.wait(0.05)
