"""What a fleet `process` run did, per bag and in total: the `--summary` JSON and the one progress bar."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.core.atomic_files import write_command_output
from seg_perception.core.health import REASONS, HealthLog

PENDING, DONE, FAILED, INTERRUPTED = "pending", "done", "failed", "interrupted"


@dataclass
class BagOutcome:
    """One input bag: where its output went, or why it has none."""

    input: Path
    output: Path
    expected_frames: int = 0  # from the bag's metadata (message counts of its camera topics)
    chunks: int = 1
    cameras: int = 0
    status: str = PENDING
    frames: int = 0
    bad_frames: int = 0
    copied: int = 0
    outputs_written: int = 0
    seconds: float = 0.0  # worker time spent on the bag (its chunks summed), reading and writing included
    segment_ms: float = 0.0
    attempts: int = 0
    workers: list[str] = field(default_factory=list)
    error: str | None = None
    health: dict[str, HealthLog] = field(default_factory=dict)  # per camera topic, its chunks in time order

    def add_health(self, chunk: dict[str, HealthLog]) -> None:
        """Append one chunk's health logs (chunks in time order; each chunk's checks start afresh)."""
        for topic, log in chunk.items():
            self.health.setdefault(topic, HealthLog()).extend(log)

    def health_lines(self) -> list[str]:
        """One line per camera topic with flagged frames: the reasons, frames and spans."""
        lines = []
        for topic, log in sorted(self.health.items()):
            parts = [
                f"{r} {log.flagged[r]} frames in {len(log.spans[r])} span{'' if len(log.spans[r]) == 1 else 's'}"
                for r in REASONS
                if log.flagged[r]
            ]
            if parts:
                lines.append(f"{topic}: " + ", ".join(parts))
        return lines

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "output": str(self.output) if self.status == DONE else None,
            "status": self.status,
            "frames": self.frames,
            "bad_frames": self.bad_frames,
            "seconds": round(self.seconds, 4),
            "fps": round(self.frames_per_second, 3),
            "chunks": self.chunks,
            "attempts": self.attempts,
            "workers": sorted(set(self.workers)),
            "error": self.error,
            "health": {topic: log.to_json() for topic, log in sorted(self.health.items())},
        }


@dataclass
class FleetSummary:
    """Every bag of the run, and how the run went as a whole."""

    bags: list[BagOutcome]
    workers: int
    ray: str | None  # the Ray address, None for a sequential run
    seconds: float = 0.0  # wall clock from the first unit dispatched to the last bag committed
    interrupted: bool = False
    backend: str = ""  # what the workers ran the model on, as they describe it

    def count(self, status: str) -> int:
        return sum(1 for b in self.bags if b.status == status)

    @property
    def frames(self) -> int:
        return sum(b.frames for b in self.bags)

    @property
    def bad_frames(self) -> int:
        return sum(b.bad_frames for b in self.bags)

    def to_json(self) -> dict[str, Any]:
        return {
            "bags": [b.to_json() for b in self.bags],
            "totals": {
                "bags": len(self.bags),
                "done": self.count(DONE),
                "failed": self.count(FAILED),
                "interrupted": self.count(INTERRUPTED) + self.count(PENDING),
                "frames": self.frames,
                "bad_frames": self.bad_frames,
                "seconds": round(self.seconds, 4),
                "fps": round(self.frames / self.seconds, 3) if self.seconds > 0 else 0.0,
                "workers": self.workers,
                "ray": self.ray,
                "backend": self.backend,
            },
        }


def write_summary(path: Path, summary: FleetSummary) -> None:
    """Write the summary JSON atomically (a temporary name beside it, then a rename)."""
    write_command_output(path, json.dumps(summary.to_json(), indent=2) + "\n", "--summary")


class FleetProgress:
    """One tqdm bar over every bag's frames (total from the bags' message counts, so tqdm's ETA holds),
    with bags done and failed beside it."""

    def __init__(self, summary: FleetSummary, enabled: bool) -> None:
        from tqdm import tqdm

        self.summary = summary
        self.total = sum(b.expected_frames for b in summary.bags if b.status == PENDING)
        self.bar = tqdm(total=self.total, unit="frame", desc="process", disable=not enabled, smoothing=0.1)
        self.started = time.perf_counter()
        self._postfix()

    def start_clock(self) -> None:
        """The fleet's seconds count from here: the workers exist and the first unit is about to go."""
        self.started = time.perf_counter()

    def frames(self, n: int) -> None:
        self.bar.update(n)

    def settle(self, expected: int, counted: int, actual: int) -> None:
        """A unit has finished: `actual` frames were segmented, `counted` shown so far, `expected` planned."""
        self.total += actual - expected
        self.bar.total = self.total
        self.bar.update(actual - counted)

    def drop(self, expected: int, counted: int) -> None:
        """A unit will not finish (its bag failed): take its frames out of the total."""
        self.total -= expected - counted
        self.bar.total = self.total
        self.bar.refresh()

    def bag_finished(self) -> None:
        self._postfix()

    def _postfix(self) -> None:
        s = self.summary
        self.bar.set_postfix_str(f"bags {s.count(DONE)} done, {s.count(FAILED)} failed of {len(s.bags)}")

    def close(self) -> None:
        self.summary.seconds = time.perf_counter() - self.started
        self.bar.close()
