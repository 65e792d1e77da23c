"""Accuracy runners: `eval` (a model against labelled images) and `compare` (two backends or precisions).

Both run the fused graph, the very graph the node runs, at each image's own resolution, so what is
measured is what the car would output, preprocessing included. A *variant* names a backend and a
precision: ``onnxruntime:fp32``, ``onnxruntime:int8-qdq``, ``onnxruntime:fp16``, ``tensorrt:fp32``,
``tensorrt:fp16``, ``tensorrt:int8``.

Ground truth is matched to images by file stem (`ground_truth`). Frames per second count only the
fused-graph calls (graph compilation, engine builds, file I/O and scoring are left out): it is the
throughput of the hot path at that size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from seg_perception.backends import Backend, create_backend, resolve_backend_name
from seg_perception.core import metrics
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.graph_compiler import LABELS_NAME, compile_fused_graph
from seg_perception.core.health import HealthMonitor, frame_spans
from seg_perception.core.model_spec import ModelSpec
from seg_perception.evaluation.ground_truth import (
    LabelledFrame,
    list_images,
    match_ground_truth,
    read_label_image,
    read_rgb,
)
from seg_perception.evaluation.results import CompareResult, EvalResult, EvalTally, FrameView, WorstFrames
from seg_perception.pipeline import drivable_table

LOG = logging.getLogger(__name__)
WORST_FRAMES = 6
VARIANT_PRECISIONS = {
    "onnxruntime": ("fp32", "int8-qdq", "fp16"),
    "tensorrt": ("fp32", "fp16", "int8"),
}
DEFAULT_PRECISION = {"onnxruntime": "fp32", "tensorrt": "fp16"}  # tensorrt: the node's default precision
ENGINE_CACHE_DIR = "~/.cache/seg_perception/engines"  # the node's engine_cache_dir default
CALIBRATION_SEED = 20_000  # the generated scenes `seg-perception quantize` calibrates on by default
CALIBRATION_FRAMES = 16


# ------------------------------------------------------------------------------------------------
# Variants: a backend and a precision


@dataclass(frozen=True)
class Variant:
    """A backend and precision pair, e.g. onnxruntime:int8-qdq."""

    backend: str
    precision: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.precision}"


def parse_variant(text: str) -> Variant:
    """'onnxruntime', 'tensorrt:fp16', 'auto', ... -> Variant; a clear error for anything else."""
    name, _, precision = text.strip().partition(":")
    if name not in ("auto", *VARIANT_PRECISIONS):
        raise SegPerceptionError(f"backend {text!r} is not auto, onnxruntime[:PRECISION] or tensorrt[:PRECISION]")
    if name == "auto":
        if precision:
            raise SegPerceptionError(f"backend {text!r}: auto takes no precision; name the backend")
        name, why = resolve_backend_name("auto")
        LOG.info("backend auto -> %s (%s)", name, why)
    precision = {"int8-qdq": "int8"}.get(precision, precision) if name == "tensorrt" else precision
    precision = precision or DEFAULT_PRECISION[name]
    if precision not in VARIANT_PRECISIONS[name]:
        raise SegPerceptionError(f"backend {text!r}: {name} precisions are {', '.join(VARIANT_PRECISIONS[name])}")
    if name == "tensorrt":
        from seg_perception.backends import check_backend

        check_backend("tensorrt", engine_cache_dir=ENGINE_CACHE_DIR)  # one line with install steps when absent
    return Variant(name, precision)


@dataclass(frozen=True)
class Calibration:
    """How an onnxruntime:int8-qdq variant gets its graph: the cached one, or calibrated on these frames."""

    frames_dir: Path | None = None
    method: str | None = None

    @property
    def requested(self) -> bool:
        return self.frames_dir is not None or self.method is not None


class VariantRunner:
    """Labels RGB frames with one variant; one fused graph and backend per frame size, compiled on first use."""

    def __init__(
        self, spec: ModelSpec, variant: Variant, threads: int = 0, calibration: Calibration | None = None
    ) -> None:
        self.spec = spec
        self.variant = variant
        self.threads = threads
        self.calibration = calibration or Calibration()
        self._backends: dict[tuple[int, int], Backend] = {}
        self.graph_notes: list[str] = []
        self.inference_s = 0.0
        self.calls = 0

    def _graph(self, fused: onnx.ModelProto, width: int, height: int) -> onnx.ModelProto:
        if self.variant.backend != "onnxruntime" or self.variant.precision == "fp32":
            return fused  # TensorRT derives its fp16/int8 graph itself, through the engine cache
        if self.variant.precision == "fp16":
            from seg_perception.core.quantization import fp16_fused_graph

            return fp16_fused_graph(fused)
        return self._qdq_graph(fused, width, height)

    def _qdq_graph(self, fused: onnx.ModelProto, width: int, height: int) -> onnx.ModelProto:
        """The gated QDQ graph `seg-perception quantize` cached for this camera size, else one calibrated here."""
        from seg_perception.core.quantization import frames_from_directory, quantize_fused_graph

        cache = Path(ENGINE_CACHE_DIR).expanduser()
        if not self.calibration.requested:
            try:
                from seg_perception.backends.engine_artefacts import describe_gate, load_cached_qdq, qdq_path

                qdq, gate = load_cached_qdq(fused, cache)
                self._note(f"{width}x{height}: the cached QDQ graph {qdq_path(cache, fused)} ({describe_gate(gate)})")
                return qdq
            except SegPerceptionError as exc:
                LOG.debug("no cached QDQ graph: %s", exc)
        method = self.calibration.method or "percentile"
        if self.calibration.frames_dir is not None:
            frames = list(frames_from_directory(self.calibration.frames_dir, limit=CALIBRATION_FRAMES * 4))
            source = f"{len(frames)} frames of {self.calibration.frames_dir}"
        else:
            from seg_perception.synthetic.scenes import generate_scene

            frames = [generate_scene(CALIBRATION_SEED + i, width, height).image for i in range(CALIBRATION_FRAMES)]
            source = f"{CALIBRATION_FRAMES} generated scenes"
        self._note(
            f"{width}x{height}: calibrated on {source} ({method}), not gated "
            "(seg-perception quantize --calib DIR caches a graph checked against fp32 on your frames)"
        )
        return quantize_fused_graph(fused, frames, method=method)

    def _note(self, text: str) -> None:
        LOG.info("%s: %s", self.variant, text)
        self.graph_notes.append(text)

    def backend_for(self, width: int, height: int) -> Backend:
        backend = self._backends.get((width, height))
        if backend is None:
            fused = compile_fused_graph(self.spec, width, height, "RGB", "input", batch=None)
            graph = self._graph(fused, width, height)
            options: dict[str, object] = {}
            if self.variant.backend == "tensorrt":
                options = {"precision": self.variant.precision, "engine_cache_dir": ENGINE_CACHE_DIR}
            backend = create_backend(self.variant.backend, graph, threads=self.threads, **options)
            # One untimed run: first calls bind buffers and initialise kernels, which is not throughput.
            backend.infer(np.zeros((1, height, width, 3), np.uint8))
            self._backends[(width, height)] = backend
        return backend

    def labels(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W) labels for an RGB uint8 (H, W, 3) frame (a copy the caller keeps)."""
        backend = self.backend_for(rgb.shape[1], rgb.shape[0])
        batch = np.ascontiguousarray(rgb[np.newaxis])
        start = time.perf_counter()
        out = backend.infer(batch)[LABELS_NAME][0].copy()
        self.inference_s += time.perf_counter() - start
        self.calls += 1
        return out

    @property
    def fps(self) -> float:
        return self.calls / self.inference_s if self.inference_s > 0 else float("nan")

    def describe(self) -> str:
        if not self._backends:
            return str(self.variant)
        return f"{self.variant} ({next(iter(self._backends.values())).describe()})"

    def close(self) -> None:
        while self._backends:
            self._backends.popitem()[1].close()

    def __enter__(self) -> VariantRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------
# Runners


@dataclass(frozen=True)
class EvalJob:
    """`eval` before its first frame: the model and variant, the frames, and the space they are scored in.

    Every way of running `eval` (here in one process, or `seg_perception.fleet.eval_on_ray` on a cluster)
    scores frames with `score_frame` into an `EvalTally` and reports through `finish_eval`, so the
    figures are computed in one place.
    """

    spec: ModelSpec
    variant: Variant
    space: metrics.LabelSpace
    frames: tuple[LabelledFrame, ...]
    unmatched: tuple[str, ...]
    settings: dict[str, Any]
    threads: int = 0
    keep_pixels: bool = False
    calibration: Calibration | None = None

    def new_tally(self) -> EvalTally:
        return EvalTally.empty(self.space.num_classes, WORST_FRAMES, self.keep_pixels)


def plan_eval(
    spec: ModelSpec,
    images_dir: Path,
    labels_dir: Path,
    label_format: str,
    ignore_index: int | None,
    variant: Variant,
    threads: int = 0,
    keep_pixels: bool = False,
    calibration: Calibration | None = None,
) -> EvalJob:
    """Match images to ground truth and settle the label space (every user error before any frame runs)."""
    space = metrics.label_space(
        label_format,
        spec.class_names,
        spec.drivable_ids,
        spec.ignore_id if ignore_index is None else ignore_index,
        ignored_classes=spec.ignored_ids,
    )
    frames, unmatched = match_ground_truth(images_dir, labels_dir)
    settings = {
        "model_spec": str(spec.spec_path or ""),
        "images": str(images_dir),
        "labels": str(labels_dir),
        "label_format": label_format,
        "ignore_index": spec.ignore_id if ignore_index is None else ignore_index,
        "backend": str(variant),
        "threads": threads,
        "camera_channel_order": "RGB",
        "output_resolution": "input",
    }
    return EvalJob(spec, variant, space, tuple(frames), tuple(unmatched), settings, threads, keep_pixels, calibration)


def score_frame(
    runner: VariantRunner,
    space: metrics.LabelSpace,
    index: int,
    frame: LabelledFrame,
    tally: EvalTally,
    health: HealthMonitor | None = None,
) -> None:
    """Read frame `index` and its ground truth, label it with `runner` and add it to `tally`; with
    `health` (frames fed in order), the health checks' flags of the frame go into the tally too.

    A frame that cannot be scored (unreadable, ground truth of another size or format) raises
    SegPerceptionError naming its file, before inference.
    """
    rgb = read_rgb(frame.image)
    raw = read_label_image(frame.labels)
    # Checked before inference, so a mismatched data set fails on its first frame.
    metrics.check_same_size(raw, rgb, f"ground truth {frame.labels.name}")
    try:
        truth = space.truth(raw)
    except SegPerceptionError as exc:
        raise SegPerceptionError(f"{frame.labels}: {exc}") from exc
    before = runner.inference_s
    labels = runner.labels(rgb)
    inference_s = runner.inference_s - before
    if health is not None and tally.health is not None:  # image files have no stamps: 15 Hz assumed
        tally.health[index] = health.update(rgb, index * 66_666_667, labels=labels).flagged
    prediction = space.prediction(labels)
    confusion = metrics.confusion_matrix(truth, prediction, space.num_classes)
    frame_miou = metrics.mean_iou(confusion, space.scored_ids)
    caption = f"mIoU {frame_miou * 100:.1f}%, pixel accuracy {metrics.pixel_accuracy(confusion) * 100:.1f}%"
    tally.add_frame(index, FrameView(frame.stem, frame_miou, caption, rgb, prediction, truth), confusion, inference_s)


def finish_eval(job: EvalJob, tally: EvalTally, cluster: dict[str, Any] | None = None) -> EvalResult:
    """Every figure `eval` reports, from the tally of all of `job`'s frames."""
    if tally.failure is not None:
        raise SegPerceptionError(tally.failure[1])
    if tally.frames != len(job.frames):
        raise SegPerceptionError(f"scored {tally.frames} of {len(job.frames)} frames; the figures would be partial")
    space = job.space
    scores = metrics.scores(tally.confusion, space.class_names, space.drivable_ids, space.scored_ids)
    notes = [n for n in (space.note, *tally.graph_notes) if n]
    return EvalResult(
        job.spec,
        str(job.variant),
        tally.backend_detail,
        space,
        scores,
        tally.frames,
        tally.fps,
        tally.worst.frames(),
        job.settings,
        list(job.unmatched),
        notes,
        cluster,
        None if tally.health is None else frame_spans(tally.health, [f.stem for f in job.frames]),
    )


def run_eval(
    spec: ModelSpec,
    images_dir: Path,
    labels_dir: Path,
    label_format: str,
    ignore_index: int | None,
    variant: Variant,
    threads: int = 0,
    keep_pixels: bool = False,
    calibration: Calibration | None = None,
) -> EvalResult:
    """`seg-perception eval` in this process: match files, score every frame, keep the worst."""
    job = plan_eval(
        spec, images_dir, labels_dir, label_format, ignore_index, variant, threads, keep_pixels, calibration
    )
    return evaluate_in_process(job)


def evaluate_in_process(job: EvalJob) -> EvalResult:
    """Score `job`'s frames one by one with one VariantRunner; the first frame that fails stops the run."""
    start = time.perf_counter()
    tally = job.new_tally()
    tally.health = {}
    health = HealthMonitor(drivable_table=drivable_table(job.spec))  # the frames in name order, as a drive
    with VariantRunner(job.spec, job.variant, job.threads, job.calibration) as runner:
        for index, frame in enumerate(job.frames):
            score_frame(runner, job.space, index, frame, tally, health)
        tally.backend_detail = runner.describe()
        tally.graph_notes = list(runner.graph_notes)
    LOG.info("evaluated %d frames in %.1f s", tally.frames, time.perf_counter() - start)
    return finish_eval(job, tally)


def run_compare(
    spec: ModelSpec,
    images_dir: Path,
    a: Variant,
    b: Variant,
    threads: int = 0,
    keep_pixels: bool = False,
    calibration: Calibration | None = None,
) -> CompareResult:
    """`seg-perception compare`: B's labels against A's on every image (no ground truth needed)."""
    k = spec.num_classes
    total = np.zeros((k, k), np.int64)
    worst = WorstFrames(WORST_FRAMES, keep_pixels)
    images = list_images(images_dir)
    with (
        VariantRunner(spec, a, threads, calibration) as run_a,
        VariantRunner(spec, b, threads, calibration) as run_b,
    ):
        for path in images:
            rgb = read_rgb(path)
            labels_a = run_a.labels(rgb)
            labels_b = run_b.labels(rgb)
            confusion = metrics.confusion_matrix(labels_a, labels_b, k)
            total += confusion
            agreement = metrics.pixel_accuracy(confusion)
            caption = f"agreement {agreement * 100:.2f}%, mIoU B vs A {metrics.mean_iou(confusion) * 100:.1f}%"
            worst.offer(FrameView(path.stem, agreement, caption, rgb, labels_b, labels_a))
        settings = {
            "model_spec": str(spec.spec_path or ""),
            "images": str(images_dir),
            "a": str(a),
            "b": str(b),
            "threads": threads,
            "camera_channel_order": "RGB",
            "output_resolution": "input",
        }
        notes = [f"A {n}" for n in run_a.graph_notes] + [f"B {n}" for n in run_b.graph_notes]
        return CompareResult(
            spec,
            str(a),
            str(b),
            run_a.describe(),
            run_b.describe(),
            metrics.scores(total, spec.class_names, spec.drivable_ids),
            len(images),
            run_a.fps,
            run_b.fps,
            worst.frames(),
            settings,
            notes,
        )


def class_colors(spec: ModelSpec, space_names: Sequence[str]) -> list[tuple[int, int, int]]:
    """Display colours for an evaluated label space (the spec's, or background/drivable for BDD maps)."""
    if tuple(space_names) == metrics.BDD_CLASS_NAMES and tuple(space_names) != spec.class_names:
        drivable = spec.classes[spec.drivable_ids[0]].color if spec.drivable_ids else (128, 64, 128)
        return [(60, 60, 60), drivable]
    by_name = {c.name: c.color for c in spec.classes}
    return [by_name.get(n, (200, 200, 200)) for n in space_names]
