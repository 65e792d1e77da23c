"""The work of a fleet `process` run: units (a bag, or a time-range chunk of one) and the worker that runs them.

A worker holds one Segmenter for its whole life, so the fused graph is compiled once per worker and camera
size, however many units it runs. It writes each unit as a complete bag inside a staging directory the
driver owns (`<staging>/attempt-<host>-<pid>-*/`) and returns where; only the driver moves a finished bag
to its output path, so an attempt cut short (a killed worker) is never visible and is never committed twice.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seg_perception.bag.bag_reader import open_bag
from seg_perception.bag.offline_processing import ProcessSummary, TimeRange, cameras_in, process_bag
from seg_perception.bag.split_bags import BagSplit
from seg_perception.core.errors import SegPerceptionError
from seg_perception.pipeline import Segmenter

LOG = logging.getLogger(__name__)
REPORT_EVERY_S = 0.5  # how often a Ray worker tells the driver's progress bar how far it got


@dataclass(frozen=True)
class ProcessOptions:
    """What every worker needs to process any unit: the model, the backend and what to write."""

    spec_path: Path | None
    backend: str
    threads: int
    outputs: tuple[str, ...]
    topics: tuple[str, ...]
    storage: str
    compression: str = ""  # "", or the rosbag2 zstd compression mode: "file" or "message"
    copy_inputs: bool = False  # also copy the segmented camera images into the output bag
    split: BagSplit | None = None  # write each output bag as several storage files (bag/split_bags.py)


@dataclass(frozen=True)
class BagInfo:
    """What the driver reads from a bag's metadata to plan it: camera frames and recorded time span."""

    frames: int
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class WorkUnit:
    """One bag, or chunk `chunk` of `chunks` of it (its messages recorded in `time_range`)."""

    job: int
    chunk: int
    chunks: int
    in_bag: Path
    name: str  # the staged bag's directory name
    staging: Path  # the driver's directory for this unit's attempts
    time_range: TimeRange
    frames: int  # expected camera frames: exact for a whole bag, proportional for a chunk (progress, ETA)

    @property
    def label(self) -> str:
        return f"{self.in_bag}" if self.chunks == 1 else f"{self.in_bag} (chunk {self.chunk + 1}/{self.chunks})"


@dataclass(frozen=True)
class UnitResult:
    """What a worker reports for a unit: the staged bag and its counts, or the one-line reason it failed."""

    job: int
    chunk: int
    worker: str
    staged: Path | None = None
    summary: ProcessSummary | None = None
    error: str | None = None
    backend: str = ""


def worker_name() -> str:
    """host:pid of this process (where an attempt ran; also in its staging directory's name)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def inspect_bag(path: Path, topics: Sequence[str]) -> BagInfo:
    """Frames on the camera topics `process` would segment, and the time span; BagError if unreadable."""
    with open_bag(path) as reader:
        connections = list(reader.connections)
        keys = {(c.topic, c.msgtype) for c in cameras_in(path, connections, topics)}
        frames = sum(c.msgcount for c in connections if (c.topic, c.msgtype) in keys)
        if not frames:
            return BagInfo(0, 0, 0)
        return BagInfo(frames, reader.start_time, reader.end_time)


def chunks_per_bag(bags: int, workers: int) -> int:
    """Chunks per bag: one when there are at least as many bags as workers, else enough to feed them all."""
    return 1 if bags == 0 or bags >= workers else math.ceil(workers / bags)


def chunk_ranges(info: BagInfo, chunks: int) -> list[TimeRange]:
    """`chunks` consecutive time ranges covering the bag (equal spans of recorded time), open at both ends."""
    chunks = max(1, min(chunks, info.frames))
    if chunks == 1:
        return [(None, None)]
    span = info.end_ns - info.start_ns
    bounds = [info.start_ns + span * i // chunks for i in range(1, chunks)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


def make_units(job: int, in_bag: Path, out_name: str, info: BagInfo, chunks: int, staging: Path) -> list[WorkUnit]:
    ranges = chunk_ranges(info, chunks)
    n = len(ranges)
    # Proportional estimates that still add up to the bag's frames.
    shares = [info.frames * (i + 1) // n - info.frames * i // n for i in range(n)]
    return [
        WorkUnit(job, i, n, in_bag, out_name if n == 1 else f"chunk-{i:05d}", staging, r, shares[i])
        for i, r in enumerate(ranges)
    ]


class FrameTally:
    """Frames segmented per unit (job, chunk) since the driver last asked: a Ray actor the workers report
    to, so the one progress bar moves while bags are in flight, not only when they finish."""

    def __init__(self) -> None:
        self.counts: dict[tuple[int, int], int] = {}

    def add(self, job: int, chunk: int, frames: int) -> None:
        self.counts[(job, chunk)] = self.counts.get((job, chunk), 0) + frames

    def take(self) -> dict[tuple[int, int], int]:
        counts, self.counts = self.counts, {}
        return counts


class _TallyReporter:
    """on_frame for a Ray worker: a fire-and-forget `add` to the tally at most every REPORT_EVERY_S."""

    def __init__(self, tally: Any, unit: WorkUnit) -> None:
        self.tally, self.unit = tally, unit
        self.frames, self.last = 0, time.monotonic()

    def __call__(self) -> None:
        self.frames += 1
        now = time.monotonic()
        if now - self.last >= REPORT_EVERY_S:
            self.tally.add.remote(self.unit.job, self.unit.chunk, self.frames)
            self.frames, self.last = 0, now


class BagWorker:
    """Runs units with one Segmenter; in-process for a sequential run, or as a Ray actor (one per worker)."""

    def __init__(self, options: ProcessOptions, tally: Any = None) -> None:
        self.options = options
        self.tally = tally  # a FrameTally actor's handle in a Ray run
        self._segmenter: Segmenter | None = None

    def _get_segmenter(self) -> Segmenter:
        if self._segmenter is None:
            from seg_perception.core.model_spec import default_spec_path
            from seg_perception.core.spec_loader import load_model_spec

            spec = load_model_spec(self.options.spec_path or default_spec_path())
            self._segmenter = Segmenter(spec, backend=self.options.backend, threads=self.options.threads)
        return self._segmenter

    def name(self) -> str:
        return worker_name()

    def process(self, unit: WorkUnit, on_frame: Callable[[], None] | None = None) -> UnitResult:
        """Write `unit` as a complete bag under its staging directory; a bag or model error is a result."""
        me = worker_name()
        if on_frame is None and self.tally is not None:
            on_frame = _TallyReporter(self.tally, unit)
        attempt = Path(tempfile.mkdtemp(prefix=f"attempt-{me.replace(':', '-')}-", dir=unit.staging))
        try:
            segmenter = self._get_segmenter()
            summary = process_bag(
                unit.in_bag,
                attempt / unit.name,
                segmenter,
                outputs=self.options.outputs,
                topics=self.options.topics,
                storage=self.options.storage,
                # chunks stay uncompressed: the merge that joins them writes the compressed bag
                compression=self.options.compression if unit.chunks == 1 else "",
                split=self.options.split if unit.chunks == 1 else None,  # and whole: the merge splits
                progress=False,
                time_range=unit.time_range,
                on_frame=on_frame,
                copy_inputs=self.options.copy_inputs,
            )
        except SegPerceptionError as exc:
            shutil.rmtree(attempt, ignore_errors=True)
            return UnitResult(unit.job, unit.chunk, me, error=str(exc))
        except BaseException:
            shutil.rmtree(attempt, ignore_errors=True)
            raise
        return UnitResult(unit.job, unit.chunk, me, attempt / unit.name, summary, backend=segmenter.describe_backend())

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None
