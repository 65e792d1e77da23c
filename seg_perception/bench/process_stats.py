"""Resource figures of another process, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessSample:
    """RSS, thread count, open descriptors and CPU seconds of one process at one moment."""

    rss_mb: float
    threads: int
    open_fds: int
    cpu_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def sample(pid: int) -> ProcessSample:
    """Read /proc/<pid>/status, stat and fd."""
    proc = Path(f"/proc/{pid}")
    status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
    rss_kb = int(status["VmRSS"].split()[0])
    threads = int(status["Threads"])
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return ProcessSample(rss_kb / 1024.0, threads, len(os.listdir(proc / "fd")), cpu_s)
