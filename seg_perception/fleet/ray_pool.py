"""Workers for a fleet run: one in-process BagWorker, or a pool of BagWorker Ray actors.

Neither actors nor their tasks are restarted by Ray (`max_restarts=0`, `max_task_retries=0`): a unit
whose actor died (ActorDiedError, or its node died) comes back to the driver as lost, the pool puts a
new actor in the dead one's place (tasks sent to an actor being created wait for it, where tasks sent
to a restarting actor fail at once), and the driver gives the unit to a free worker (another one where
it can): a fresh attempt in a fresh directory, the driver alone deciding what is retried and counted.
Ctrl-C kills every actor (`ray.kill`, which interrupts a running task at once) and waits until each
in-flight task has resolved, so no worker is still writing when the staging directories are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from seg_perception.fleet.work_units import BagWorker, FrameTally, ProcessOptions, UnitResult, WorkUnit

LOG = logging.getLogger(__name__)
ABORT_WAIT_S = 60.0  # how long Ctrl-C waits for killed actors' tasks to resolve


@dataclass(frozen=True)
class Finished:
    """A unit's end on worker `worker`: its result, or (result None) why the worker was lost."""

    unit: WorkUnit
    worker: int
    result: UnitResult | None
    lost: str = ""


class WorkerPool(Protocol):
    def idle(self) -> list[int]: ...
    def busy(self) -> bool: ...
    def submit(self, worker: int, unit: WorkUnit) -> None: ...
    def collect(self, timeout_s: float) -> list[Finished]: ...
    def frames_done(self) -> dict[tuple[int, int], int]: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class InProcessPool:
    """One worker in this process: `collect` runs the submitted unit to its end."""

    def __init__(self, options: ProcessOptions, on_frame: Callable[[], None]) -> None:
        self.worker = BagWorker(options)
        self.on_frame = on_frame
        self.unit: WorkUnit | None = None

    def idle(self) -> list[int]:
        return [] if self.unit is not None else [0]

    def busy(self) -> bool:
        return self.unit is not None

    def submit(self, worker: int, unit: WorkUnit) -> None:
        self.unit = unit

    def collect(self, timeout_s: float) -> list[Finished]:
        unit, self.unit = self.unit, None
        if unit is None:
            return []
        return [Finished(unit, 0, self.worker.process(unit, self.on_frame))]

    def frames_done(self) -> dict[tuple[int, int], int]:
        return {}  # on_frame reports every frame as it happens

    def abort(self) -> None:
        self.unit = None

    def close(self) -> None:
        self.worker.close()


class RayActorPool:
    """`workers` BagWorker actors, each with `num_cpus` / `num_gpus`, one unit in flight per actor."""

    def __init__(
        self, ray: ModuleType, options: ProcessOptions, workers: int, num_cpus: float, num_gpus: float
    ) -> None:
        self.ray = ray
        self.options = options
        self.actor_class = ray.remote(BagWorker).options(
            num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0, max_task_retries=0
        )
        self.tally = ray.remote(FrameTally).options(num_cpus=0).remote()
        self.actors = [self.actor_class.remote(options, self.tally) for _ in range(workers)]
        self.in_flight: dict[Any, tuple[int, WorkUnit]] = {}

    def idle(self) -> list[int]:
        taken = {w for w, _ in self.in_flight.values()}
        return [i for i in range(len(self.actors)) if i not in taken]

    def busy(self) -> bool:
        return bool(self.in_flight)

    def submit(self, worker: int, unit: WorkUnit) -> None:
        self.in_flight[self.actors[worker].process.remote(unit)] = (worker, unit)

    def collect(self, timeout_s: float) -> list[Finished]:
        from ray.exceptions import (
            NodeDiedError,
            OutOfMemoryError,
            RayActorError,
            RayError,
            RayTaskError,
            WorkerCrashedError,
        )

        if not self.in_flight:
            return []
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=timeout_s)
        finished = []
        for ref in ready:
            worker, unit = self.in_flight.pop(ref)
            try:
                finished.append(Finished(unit, worker, self.ray.get(ref)))
            except (RayActorError, WorkerCrashedError, NodeDiedError, OutOfMemoryError) as exc:
                finished.append(Finished(unit, worker, None, lost=_first_line(exc)))
                self._replace(worker)
            except RayTaskError as exc:  # a bug in the worker, not the bag: the bag fails with the cause
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                error = f"{type(cause).__name__}: {_first_line(cause)}"
                finished.append(Finished(unit, worker, UnitResult(unit.job, unit.chunk, "", error=error)))
            except RayError as exc:  # the result itself is gone (owner died, object lost): run the unit again
                finished.append(Finished(unit, worker, None, lost=_first_line(exc)))
                self._replace(worker)
        return finished

    def frames_done(self) -> dict[tuple[int, int], int]:
        """Frames the workers reported since the last call, per unit (job, chunk)."""
        from ray.exceptions import RayError

        try:
            counts: dict[tuple[int, int], int] = self.ray.get(self.tally.take.remote())
        except RayError as exc:  # the counter is only for the bar: finished units still settle the counts
            LOG.debug("progress counter unavailable: %s", _first_line(exc))
            return {}
        return counts

    def _replace(self, worker: int) -> None:
        self.ray.kill(self.actors[worker], no_restart=True)  # dead already, or past saving
        self.actors[worker] = self.actor_class.remote(self.options, self.tally)

    def abort(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        refs = list(self.in_flight)
        if refs:
            _, unresolved = self.ray.wait(refs, num_returns=len(refs), timeout=ABORT_WAIT_S)
            if unresolved:
                LOG.warning("%d workers did not stop within %.0f s of being killed", len(unresolved), ABORT_WAIT_S)
        self.in_flight.clear()

    def close(self) -> None:
        for actor in [*self.actors, self.tally]:
            self.ray.kill(actor, no_restart=True)
        self.actors = []


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
