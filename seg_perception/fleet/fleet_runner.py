"""The driver of a fleet `process` run: plan the bags into units, hand them to workers, commit each bag once.

A bag's output appears only when all its units have finished: a whole-bag unit's staged bag is renamed
into place, a chunked bag's chunks are merged in time order into it. Everything else (attempts, chunks,
leftovers of killed workers) lives in one hidden staging directory that is removed however the run ends.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seg_perception.bag.bag_io import move_bag_into_place
from seg_perception.core.errors import SegPerceptionError
from seg_perception.fleet.bag_inputs import STAGING_LOCK, STAGING_PREFIX, BagPlan, staging_locked
from seg_perception.fleet.chunk_merge import merge_chunk_bags
from seg_perception.fleet.fleet_summary import (
    DONE,
    FAILED,
    INTERRUPTED,
    PENDING,
    BagOutcome,
    FleetProgress,
    FleetSummary,
)
from seg_perception.fleet.ray_pool import Finished, WorkerPool
from seg_perception.fleet.work_units import (
    BagInfo,
    ProcessOptions,
    UnitResult,
    WorkUnit,
    chunks_per_bag,
    inspect_bag,
    make_units,
)

LOG = logging.getLogger(__name__)
POLL_S = 0.5  # how often the driver looks up from waiting (Ctrl-C, progress)
DEFAULT_RETRIES = 2  # a unit whose worker dies is tried this many more times


@dataclass(frozen=True)
class FleetRequest:
    plan: BagPlan
    options: ProcessOptions
    workers: int
    force: bool = False
    retries: int = DEFAULT_RETRIES
    progress: bool = True
    ray: str | None = None


def _staging_root(plan: BagPlan) -> tuple[Path, bool, int]:
    """The run's hidden staging directory (beside OUT_BAG, or inside the output root), whether the
    output root had to be created for it, and the descriptor of its lock file, held (flock) until the run
    closes it: another run's --force skips a staging whose lock is held."""
    if plan.single:
        parent, prefix = plan.out.parent, f".{plan.out.name}.partial-"
    else:
        parent, prefix = plan.out, STAGING_PREFIX
    created = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    lock = os.open(staging / STAGING_LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return staging, created, lock


class _Run:
    def __init__(self, request: FleetRequest, summary: FleetSummary, progress: FleetProgress) -> None:
        self.request = request
        self.summary = summary
        self.progress = progress
        self.results: dict[int, dict[int, UnitResult]] = {}
        self.counted: dict[tuple[int, int], int] = {}  # frames shown on the bar for a unit in flight
        self.attempts: dict[tuple[int, int], int] = {}
        self.avoid: dict[tuple[int, int], int] = {}  # the worker a unit was lost on
        self.pending: deque[WorkUnit] = deque()
        self.current: tuple[int, int] | None = None  # the in-process unit, for live frame counts
        self.in_flight: set[tuple[int, int]] = set()

    def frame(self) -> None:
        if self.current is not None:
            self.reported({self.current: 1})

    def reported(self, counts: dict[tuple[int, int], int]) -> None:
        """Frames segmented by units still in flight (late reports of finished units are dropped)."""
        for key, n in counts.items():
            if key in self.in_flight:
                self.counted[key] = self.counted.get(key, 0) + n
                self.progress.frames(n)

    def dispatch(self, pool: WorkerPool) -> None:
        for worker in pool.idle():
            if not self.pending:
                return
            unit = next((u for u in self.pending if self.avoid.get((u.job, u.chunk)) != worker), self.pending[0])
            self.pending.remove(unit)
            key = (unit.job, unit.chunk)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            self.summary.bags[unit.job].attempts += 1
            self.current = key
            self.in_flight.add(key)
            pool.submit(worker, unit)

    def finished(self, done: Finished) -> None:
        unit, key = done.unit, (done.unit.job, done.unit.chunk)
        bag = self.summary.bags[unit.job]
        self.in_flight.discard(key)
        counted = self.counted.pop(key, 0)
        if bag.status != PENDING:  # another chunk of this bag failed already
            self.progress.drop(unit.frames, counted)
            return
        if done.result is None:
            self._lost(done, bag, counted)
            return
        if done.result.error is not None:
            self._fail(unit.job, done.result.error, unit.frames, counted)
            return
        result = done.result
        if result.summary is None or result.staged is None:
            self._fail(unit.job, f"worker {result.worker} returned no bag for {unit.label}", unit.frames, counted)
            return
        s = result.summary
        self.progress.settle(unit.frames, counted, s.frames)
        bag.frames += s.frames
        bag.cameras = s.cameras
        bag.bad_frames += s.bad_frames
        bag.copied += s.copied
        bag.outputs_written += s.outputs_written
        bag.seconds += s.seconds
        bag.segment_ms += s.segment_ms
        bag.workers.append(result.worker)
        self.summary.backend = result.backend or self.summary.backend
        chunks = self.results.setdefault(unit.job, {})
        chunks[unit.chunk] = result
        if len(chunks) == unit.chunks:
            for i in range(unit.chunks):  # in time order, whatever order the chunks finished in
                summary = chunks[i].summary
                bag.add_health(summary.health if summary is not None else {})
            self._commit(unit, bag, [chunks[i].staged for i in range(unit.chunks)])

    def _lost(self, done: Finished, bag: BagOutcome, counted: int) -> None:
        unit, key = done.unit, (done.unit.job, done.unit.chunk)
        self.progress.frames(-counted)
        if self.attempts[key] > self.request.retries:
            reason = f"its worker died on each of {self.attempts[key]} attempts (last: {done.lost})"
            self._fail(unit.job, reason, unit.frames, 0)
            return
        LOG.warning("a worker died while processing %s (%s); trying it again", unit.label, done.lost)
        self.avoid[key] = done.worker
        self.pending.appendleft(unit)

    def _fail(self, job: int, error: str, expected: int, counted: int) -> None:
        bag = self.summary.bags[job]
        bag.status, bag.error = FAILED, error
        self.progress.drop(expected, counted)
        for other in [u for u in self.pending if u.job == job]:  # the bag's other chunks would be thrown away
            self.pending.remove(other)
            self.progress.drop(other.frames, 0)
        self.progress.bag_finished()

    def _commit(self, unit: WorkUnit, bag: BagOutcome, staged: list[Path | None]) -> None:
        paths = [p for p in staged if p is not None]
        try:
            if unit.chunks == 1:
                move_bag_into_place(paths[0], bag.output, self.request.force)
            else:
                options = self.request.options
                merge_chunk_bags(
                    paths, bag.output, options.storage, self.request.force, options.compression, options.split
                )
        except SegPerceptionError as exc:
            bag.status, bag.error = FAILED, str(exc)
        else:
            bag.status = DONE
        shutil.rmtree(unit.staging, ignore_errors=True)  # the attempts and chunks of this bag
        self.progress.bag_finished()


def run_fleet(request: FleetRequest, make_pool: Callable[[int, Callable[[], None]], WorkerPool]) -> FleetSummary:
    """Process every bag of the plan with `make_pool(workers, on_frame)`'s workers; the summary of the run.

    A bag that cannot be read, or whose units fail, is listed as failed with the reason; the others
    go on. Ctrl-C (KeyboardInterrupt) stops the workers, removes everything staged, and returns the
    summary with `interrupted` set and the unfinished bags marked so; bags committed before it stay.
    """
    plan = request.plan
    for busy in plan.busy:
        LOG.warning("skipping %s: the staging directory of a process running now", busy)
    for stale in plan.stale:  # an interrupted run's staging, refused by plan_bags without --force
        if staging_locked(stale):  # a run that started since the plan was made
            LOG.warning("skipping %s: the staging directory of a process running now", stale)
            continue
        shutil.rmtree(stale, ignore_errors=True)
    summary = FleetSummary([BagOutcome(j.in_bag, j.out_bag) for j in plan.jobs], request.workers, request.ray)
    infos: dict[int, BagInfo] = {}
    for i, job in enumerate(plan.jobs):
        try:
            infos[i] = inspect_bag(job.in_bag, request.options.topics)
        except SegPerceptionError as exc:
            summary.bags[i].status, summary.bags[i].error = FAILED, str(exc)
    if not infos:
        return summary
    chunks = chunks_per_bag(len(infos), request.workers)
    staging, created_root, lock = _staging_root(plan)
    try:
        units = _plan_units(plan, infos, chunks, staging, summary)
        _drive(request, summary, units, make_pool)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(lock)  # the lock goes with it
        if created_root and not any(staging.parent.iterdir()):
            staging.parent.rmdir()
    return summary


def _plan_units(
    plan: BagPlan, infos: dict[int, BagInfo], chunks: int, staging: Path, summary: FleetSummary
) -> list[WorkUnit]:
    units: list[WorkUnit] = []
    for i, info in infos.items():
        stage = staging / f"bag-{i:05d}"
        stage.mkdir()
        mine = make_units(i, plan.jobs[i].in_bag, plan.jobs[i].out_bag.name, info, chunks, stage)
        summary.bags[i].expected_frames, summary.bags[i].chunks = info.frames, len(mine)
        units += mine
    return units


def _drive(
    request: FleetRequest,
    summary: FleetSummary,
    units: list[WorkUnit],
    make_pool: Callable[[int, Callable[[], None]], WorkerPool],
) -> None:
    """Run the units to their end; Ctrl-C stops the workers and marks what is unfinished."""
    progress = FleetProgress(summary, request.progress)
    run = _Run(request, summary, progress)
    run.pending.extend(units)
    workers = min(request.workers, len(units))
    pool: WorkerPool | None = None
    try:
        pool = make_pool(workers, run.frame)
        summary.workers = workers
        progress.start_clock()  # actor start-up is not fleet time
        while run.pending or pool.busy():
            run.dispatch(pool)
            for done in pool.collect(POLL_S):
                run.finished(done)
            run.reported(pool.frames_done())
    except BaseException as exc:
        if pool is not None:
            pool.abort()
        for bag in summary.bags:
            if bag.status == PENDING:
                bag.status = INTERRUPTED
        summary.interrupted = True
        if not isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        progress.close()
        if pool is not None:
            pool.close()
