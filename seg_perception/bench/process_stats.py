"""Resource figures of another process, read from /proc (Linux)."""

from __future__ import annotations

import os
import threading
import time
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


class ProcessTrace:
    """Samples a process every `interval_s` on a thread of its own (while the caller blocks on something
    else), from `start()` to `stop()`, stamped with time.monotonic(). A process that has exited ends
    the trace; what was sampled before stays."""

    def __init__(self, pid: int, interval_s: float = 0.25) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.monotonic_s: list[float] = []
        self.samples: list[ProcessSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"trace-{pid}", daemon=True)

    def start(self) -> ProcessTrace:
        self.take()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling after one last sample; idempotent."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.take()

    def window(self, since: float, until: float) -> tuple[list[float], list[ProcessSample]]:
        """The samples taken between two time.monotonic() readings, with seconds since `since`."""
        with self._lock:
            pairs = [(t, s) for t, s in zip(self.monotonic_s, self.samples, strict=True) if since <= t <= until]
        return [t - since for t, _ in pairs], [s for _, s in pairs]

    def take(self) -> float:
        """One sample now (besides the thread's); its time.monotonic(), to mark where a phase begins."""
        now = time.monotonic()
        try:
            s = sample(self.pid)
        except (OSError, KeyError, ValueError):  # the process is gone (or going)
            self._stop.set()
            return now
        with self._lock:
            self.monotonic_s.append(now)
            self.samples.append(s)
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.take()


def thread_names(pid: int) -> list[str]:
    """The names of the process's threads (/proc/<pid>/task/*/comm), sorted; [] once it is gone."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return sorted(name for name in (_read(t / "comm") for t in tasks) if name)
    except OSError:
        return []


def open_fd_targets(pid: int) -> list[str]:
    """What the process's descriptors point at (sockets and pipes by kind), sorted; [] once it is gone."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    targets = []
    for fd in fds:
        try:
            targets.append(os.readlink(fd).split(":[", 1)[0])
        except OSError:
            continue
    return sorted(targets)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
