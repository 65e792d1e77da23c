"""The fleet driver (run_fleet) with a scripted pool: units finish in an order the test chooses, and a
worker dies on a unit as often as the test says.

* A bag split into three chunks whose last chunk finishes first (then the middle, then the first) is
  still merged in time order: the merged sqlite3 bag's rows, in the order they were written (row id),
  equal a one-pass run's.
* A worker dying on the same unit: exactly DEFAULT_RETRIES deaths still give the bag (the last attempt
  succeeds); one death more fails the bag, naming the attempts.

The pool runs each unit in this process with the real BagWorker; only the finishing order and the deaths
are scripted, so everything the driver decides (what to merge in which order, what to retry) is real.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fleet_bags import read_bag

from seg_perception.bag.offline_processing import process_bag
from seg_perception.fleet.bag_inputs import plan_bags
from seg_perception.fleet.fleet_runner import DEFAULT_RETRIES, FleetRequest, run_fleet
from seg_perception.fleet.fleet_summary import DONE, FAILED
from seg_perception.fleet.ray_pool import Finished
from seg_perception.fleet.work_units import BagWorker, ProcessOptions, WorkUnit
from seg_perception.pipeline import Segmenter
from seg_perception.synthetic.drive_bag import write_synthetic_drive

W, H = 64, 48
OUTPUTS = ("labels", "drivable_mask")
WORKERS = 3


class ScriptedPool:
    """`workers` workers; `collect` finishes the in-flight unit with the highest chunk index first, and a
    unit listed in `deaths` is lost (its worker died) that many times before it is really processed."""

    def __init__(self, options: ProcessOptions, workers: int, deaths: dict[tuple[int, int], int]) -> None:
        self.worker = BagWorker(options)
        self.workers = workers
        self.deaths = dict(deaths)
        self.in_flight: dict[int, WorkUnit] = {}
        self.finished_order: list[int] = []

    def idle(self) -> list[int]:
        return [w for w in range(self.workers) if w not in self.in_flight]

    def busy(self) -> bool:
        return bool(self.in_flight)

    def submit(self, worker: int, unit: WorkUnit) -> None:
        self.in_flight[worker] = unit

    def collect(self, timeout_s: float) -> list[Finished]:
        if not self.in_flight:
            return []
        worker = max(self.in_flight, key=lambda w: self.in_flight[w].chunk)
        unit = self.in_flight.pop(worker)
        key = (unit.job, unit.chunk)
        if self.deaths.get(key, 0) > 0:
            self.deaths[key] -= 1
            return [Finished(unit, worker, None, "the worker process was killed (scripted)")]
        self.finished_order.append(unit.chunk)
        return [Finished(unit, worker, self.worker.process(unit))]

    def frames_done(self) -> dict[tuple[int, int], int]:
        return {}

    def abort(self) -> None:
        self.in_flight.clear()

    def close(self) -> None:
        self.worker.close()


def _run(tmp_path: Path, spec_path: Path, deaths: dict[tuple[int, int], int]) -> tuple[Path, Path, object, list]:
    bag = write_synthetic_drive(tmp_path / "in", 7, width=W, height=H, rate_hz=10, storage="sqlite3").path
    out = tmp_path / "out"
    options = ProcessOptions(spec_path, "onnxruntime", 1, OUTPUTS, (), "sqlite3")
    pools: list[ScriptedPool] = []

    def make_pool(workers: int, on_frame: object) -> ScriptedPool:
        pools.append(ScriptedPool(options, workers, deaths))
        return pools[0]

    request = FleetRequest(plan_bags([str(bag)], out, force=False), options, WORKERS, progress=False)
    summary = run_fleet(request, make_pool)
    return bag, out, summary, pools[0].finished_order


def _rows_as_written(bag: Path) -> list[tuple[str, int, bytes]]:
    (db3,) = bag.glob("*.db3")
    with sqlite3.connect(db3) as db:
        query = "SELECT t.name, m.timestamp, m.data FROM messages m JOIN topics t ON m.topic_id = t.id ORDER BY m.id"
        return list(db.execute(query))


def test_a_later_chunk_finishing_first_is_still_merged_in_time_order(
    tmp_path: Path, spec_path: Path, segmenter: Segmenter
) -> None:
    bag, out, summary, finished = _run(tmp_path, spec_path, {})
    assert finished == [2, 1, 0], "the scripted pool must finish the last chunk first"
    (outcome,) = summary.bags  # type: ignore[attr-defined]
    assert (outcome.status, outcome.chunks, outcome.frames) == (DONE, 3, 7)
    whole = tmp_path / "whole"
    process_bag(bag, whole, segmenter, outputs=OUTPUTS, storage="sqlite3", progress=False)
    written = _rows_as_written(out)
    assert written == _rows_as_written(whole)
    assert [t for _, t, _ in written] == sorted(t for _, t, _ in written)
    assert read_bag(out) == read_bag(whole)


@pytest.mark.parametrize("deaths", [DEFAULT_RETRIES, DEFAULT_RETRIES + 1])
def test_a_worker_dying_on_the_same_unit_is_retried_exactly_the_documented_times(
    tmp_path: Path, spec_path: Path, deaths: int
) -> None:
    assert DEFAULT_RETRIES == 2  # the documented count (fleet_runner): a lost unit is tried twice more
    _, out, summary, _ = _run(tmp_path, spec_path, {(0, 1): deaths})
    (outcome,) = summary.bags  # type: ignore[attr-defined]
    if deaths <= DEFAULT_RETRIES:
        assert outcome.status == DONE, outcome.error
        assert outcome.attempts == 3 + deaths  # three chunks, the middle one tried 1 + deaths times
        assert outcome.frames == 7
        assert (out / "metadata.yaml").is_file()
    else:
        assert outcome.status == FAILED
        assert outcome.error.startswith(f"its worker died on each of {deaths} attempts (last: ")
        assert not out.exists()
