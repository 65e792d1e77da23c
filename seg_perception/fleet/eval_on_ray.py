"""`seg-perception eval --ray`: score a labelled image set with Ray Data, on a pool of actors.

The data set is a list of (frame index, image path, ground-truth path) rows; `map_batches` hands batches
of rows to a fixed pool of actors, each holding one VariantRunner (the fused graph compiled once per
frame size, as in one process). An actor reads its own images and labels, so no pixels travel through
the object store, and returns one EvalTally per batch: the batch's confusion matrix, worst frames,
fused-graph time and the first frame it could not score. The driver merges the tallies in frame order
and reports through `evaluation.finish_eval`, the same code as `eval` in one process: every figure is
the one-process figure on the same data (integer sums; worst frames ranked by score, then frame index).

Paths, the model spec's ONNX file and --calib directories must be readable at the same paths on every
node (a shared file system), and the nodes need this package installed, as for any Ray job.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.core import metrics
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.model_spec import ModelSpec
from seg_perception.evaluation.ground_truth import LabelledFrame
from seg_perception.evaluation.results import EvalResult, EvalTally
from seg_perception.evaluation.runners import (
    WORST_FRAMES,
    Calibration,
    EvalJob,
    Variant,
    VariantRunner,
    finish_eval,
    score_frame,
)
from seg_perception.fleet.ray_runtime import ActorPool, actors_that_fit, import_ray, ray_session

LOG = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 16
ACTOR_START_TIMEOUT_S = 600  # generous: a busy node may take long to start a worker process


@dataclass(frozen=True)
class RayEvalOptions:
    """Where `eval --ray` runs and how its actor pool is shaped."""

    address: str  # ray_runtime.LOCAL, `auto`, `ray://HOST:PORT` or `HOST:PORT`
    workers: int | None = None  # actors; None: as many as the cluster's CPUs (GPUs) allow, at most one a batch
    num_cpus: float = 1.0  # per actor; also the actor's ONNX Runtime threads
    num_gpus: float = 0.0  # per actor
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise SegPerceptionError(f"--workers {self.workers}: needs at least 1")
        if self.num_cpus <= 0 or self.num_gpus < 0:
            raise SegPerceptionError(f"--num-cpus {self.num_cpus} / --num-gpus {self.num_gpus}: need > 0 and >= 0")
        if self.batch_size < 1:
            raise SegPerceptionError(f"--batch-size {self.batch_size}: needs at least 1")

    @property
    def pool(self) -> ActorPool:
        return ActorPool(self.workers, self.num_cpus, self.num_gpus)


class BatchScorer:
    """One per Ray actor: a VariantRunner that scores batches of frame rows into one EvalTally each."""

    def __init__(
        self,
        spec: ModelSpec,
        variant: Variant,
        space: metrics.LabelSpace,
        keep_pixels: bool,
        calibration: Calibration | None,
        threads: int,
    ) -> None:
        self._space = space
        self._keep_pixels = keep_pixels
        self._runner = VariantRunner(spec, variant, threads, calibration)
        self._actor_id = _current_actor_id()

    def __del__(self) -> None:  # Ray Data ends the pool's actors without a hook; the backends' close() runs here
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.close()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tally = EvalTally.empty(self._space.num_classes, WORST_FRAMES, self._keep_pixels)
        for index, stem, image, labels in zip(
            batch["index"], batch["stem"], batch["image"], batch["labels"], strict=True
        ):
            frame = LabelledFrame(str(stem), Path(str(image)), Path(str(labels)))
            try:
                score_frame(self._runner, self._space, int(index), frame, tally)
            except SegPerceptionError as exc:
                # Reported by the driver exactly as one-process eval reports it: the lowest such index wins.
                tally.fail(int(index), str(exc))
                break
        tally.backend_detail = self._runner.describe()
        tally.graph_notes = list(self._runner.graph_notes)
        # One row: Arrow has no type for a tally, so Ray Data keeps it as a Python object (see tallies_on_ray).
        return {"tally": np.array([tally], dtype=object), "actor": np.array([self._actor_id])}


def _current_actor_id() -> str:
    return str(import_ray().get_runtime_context().get_actor_id())


def frame_rows(frames: tuple[LabelledFrame, ...]) -> list[dict[str, Any]]:
    """The Ray data set's rows: paths only (actors read the pixels themselves)."""
    return [{"index": i, "stem": f.stem, "image": str(f.image), "labels": str(f.labels)} for i, f in enumerate(frames)]


def pool_size(options: RayEvalOptions, resources: dict[str, float], batches: int) -> int:
    """--workers, or as many actors as the cluster's CPUs and GPUs hold; never more than there are batches.

    A pool the cluster cannot hold is refused here rather than left waiting for resources that never come
    (on an autoscaling cluster, start its nodes first).
    """
    fits = actors_that_fit(options.pool, resources)
    return max(1, min(fits, batches))


def tallies_on_ray(ray: Any, job: EvalJob, options: RayEvalOptions) -> tuple[list[EvalTally], int, int]:
    """Run `job`'s frames through an actor pool: one tally per batch (in frame order), the pool size, and
    how many of its actors scored a batch."""
    rows = frame_rows(job.frames)
    batches = math.ceil(len(rows) / options.batch_size)
    workers = pool_size(options, ray.cluster_resources(), batches)
    LOG.info("eval on Ray: %d frames in %d batches of %d, %d actors", len(rows), batches, options.batch_size, workers)
    # The pool starts in full before the first batch is handed out (batches then spread over every actor),
    # and a cluster short of resources fails with Ray's "Timed out while starting actors" instead of hanging.
    # Tallies travel as Python objects: said explicitly, Ray Data does so without a warning per actor.
    context = ray.data.DataContext.get_current()
    saved = (context.wait_for_min_actors_s, context.enable_fallback_to_arrow_object_ext_type)
    context.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S
    context.enable_fallback_to_arrow_object_ext_type = True
    try:
        dataset = ray.data.from_items(rows, override_num_blocks=batches).map_batches(
            BatchScorer,
            batch_size=options.batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=options.num_cpus,
            num_gpus=options.num_gpus,
            fn_constructor_kwargs={
                "spec": job.spec,
                "variant": job.variant,
                "space": job.space,
                "keep_pixels": job.keep_pixels,
                "calibration": job.calibration,
                "threads": options.pool.threads,
            },
            udf_modifying_row_count=True,  # a batch of frames becomes one tally
        )
        tallies: list[EvalTally] = []
        actors: set[str] = set()
        try:
            for row in dataset.iter_rows():
                tallies.append(row["tally"])
                actors.add(str(row["actor"]))
        except ray.exceptions.RayError as exc:  # e.g. actors that cannot start, or a spec missing on a node
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise SegPerceptionError(f"eval --ray failed on the cluster: {lines[-1] if lines else exc}") from None
    finally:
        context.wait_for_min_actors_s, context.enable_fallback_to_arrow_object_ext_type = saved
    tallies.sort(key=lambda t: -1 if t.first_index is None else t.first_index)
    return tallies, workers, len(actors)


def evaluate_on_ray(job: EvalJob, options: RayEvalOptions) -> EvalResult:
    """`eval --ray`: the figures of `evaluation.evaluate_in_process(job)`, computed by a pool of Ray actors."""
    with ray_session(options.address) as ray:
        start = time.perf_counter()  # from the actor pool's start (Ray itself is up) to the last tally
        parts, workers, used = tallies_on_ray(ray, job, options)
        wall_s = time.perf_counter() - start
    tally = job.new_tally()
    for part in parts:
        tally.merge(part)
    cluster = {
        "address": options.address,
        "workers": workers,
        "workers_used": used,
        "batch_size": options.batch_size,
        "batches": len(parts),
        "num_cpus_per_worker": options.num_cpus,
        "num_gpus_per_worker": options.num_gpus,
        "wall_s": round(wall_s, 3),
        "frames_per_s": round(tally.frames / wall_s, 3) if wall_s > 0 else None,
    }
    result = finish_eval(job, tally, cluster)
    LOG.info("evaluated %d frames on Ray in %.1f s (%d batches on %d actors)", tally.frames, wall_s, len(parts), used)
    return result
