"""`synth` streams: its peak memory does not grow with --frames (a drive is never built whole first).

Each run is the real CLI in a subprocess, stopped once its progress bar shows a few frames written; its peak
RSS is the kernel's high-water mark of the running program (VmHWM, /proc/PID/status). A million-frame
request must peak where a 300-frame one does: a drive built whole first holds every object along ~700 km
of road (measured: +160 MB) before its first frame.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "seg-perception"
FRAMES_SEEN = 3  # frames written before a run is stopped
SHORT = 300  # frames of the reference run: still running when FRAMES_SEEN are written
DEADLINE_S = 240.0  # generous: only a drive built whole first comes near it
ALLOWED_GROWTH_MB = 40.0  # measured growth here: under 2 MB; a drive built whole first: +160 MB


def _peak_rss_mb_after_a_few_frames(args: list[str], total: int) -> float:
    proc = subprocess.Popen([str(CLI), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen = threading.Event()
    text = bytearray()
    progress = re.compile(rb"(\d+)/" + str(total).encode())

    def read() -> None:
        assert proc.stderr is not None
        while chunk := os.read(proc.stderr.fileno(), 4096):
            text.extend(chunk)
            counts = [int(m) for m in progress.findall(bytes(text[-400:]))]
            if counts and max(counts) >= FRAMES_SEEN:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + DEADLINE_S
    while not seen.is_set() and proc.poll() is None and time.monotonic() < deadline:
        seen.wait(timeout=0.2)
    reached = seen.is_set()
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        status = ""
    proc.kill()
    proc.wait()
    reader.join(timeout=5)
    assert reached, (
        f"{args}: no {FRAMES_SEEN} frames within {DEADLINE_S:.0f} s:\n{text[-2000:].decode(errors='replace')}"
    )
    # The high-water mark of the program itself (ru_maxrss would include the forked copy of this test).
    peak = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert peak, f"{args}: the run ended before its memory could be read (exit {proc.returncode})"
    return int(peak.group(1)) / 1024


@pytest.mark.parametrize(
    "target",
    [["--bag", "{dir}/bag"], ["--out", "{dir}/drive", "--drive"], ["--out", "{dir}/scenes"]],
    ids=["bag", "out-drive", "out-scenes"],
)
def test_synth_peak_memory_is_flat_in_frames(tmp_path: Path, target: list[str]) -> None:
    peaks = {}
    for frames in (SHORT, 1_000_000):
        where = [a.format(dir=tmp_path / str(frames)) for a in target]
        args = ["synth", *where, "--frames", str(frames), "--size", "32x24", "--seed", "3"]
        peaks[frames] = _peak_rss_mb_after_a_few_frames(args, frames)
    growth = peaks[1_000_000] - peaks[SHORT]
    print(f"synth {target[0]}: peak RSS {peaks}")
    assert growth < ALLOWED_GROWTH_MB, (
        f"peak RSS {peaks[SHORT]:.0f} MB at {SHORT} frames, {peaks[1_000_000]:.0f} MB at 1e6"
    )
