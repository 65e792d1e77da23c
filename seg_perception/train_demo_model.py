"""Dev-only: train the bundled demo model on synthetic scenes and write its ONNX file and model spec.

    PYTHONPATH=. .venv-train/bin/python -m seg_perception.train_demo_model --out models/ [--minutes M] [--seed S]

Needs CPU PyTorch (imported lazily here, so the package itself never depends on it). The training images
go through exactly what the deployed pipeline does to a camera frame: 1280x720 RGB -> float -> bilinear
resize (cv2.INTER_LINEAR, half-pixel centres, no antialiasing) to the model's 320x192. Labels are sampled
at the pixel centres that resize uses, so thin structures (lane markings, far pedestrians) line up with
the image. Held-out evaluation runs the exported ONNX file under ONNX Runtime on seeds never trained on.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from seg_perception.synthetic.scenes import DEMO_CLASSES, IGNORE_ID, generate_scene

LOG = logging.getLogger("train_demo_model")
NAME = "demo_road_seg"
MODEL_W, MODEL_H = 320, 192
CAMERA_W, CAMERA_H = 1280, 720
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TRAIN_SEED_BASE = 10_000_000  # training scenes use seeds from here; held-out scenes use 0..N-1
VAL_SEED_BASE = 5_000_000  # progress monitoring only, never used to pick weights


def to_model_input(frame: np.ndarray) -> np.ndarray:
    """Camera RGB uint8 frame -> model-size RGB float32 in [0, 255], as the fused graph's Resize does."""
    return cv2.resize(frame.astype(np.float32), (MODEL_W, MODEL_H), interpolation=cv2.INTER_LINEAR)


def to_model_labels(labels: np.ndarray) -> np.ndarray:
    """Nearest label at the source pixel under each output pixel's centre (what bilinear samples)."""
    h, w = labels.shape
    rows = np.minimum(((np.arange(MODEL_H) + 0.5) * h / MODEL_H).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(MODEL_W) + 0.5) * w / MODEL_W).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


def _render(seed: int) -> tuple[np.ndarray, np.ndarray]:
    scene = generate_scene(seed, CAMERA_W, CAMERA_H)
    image = np.clip(np.rint(to_model_input(scene.image)), 0, 255).astype(np.uint8)
    return image, to_model_labels(scene.labels)


def _worker_init() -> None:
    cv2.setNumThreads(1)


def render_dataset(seeds: Sequence[int], workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 192, 320, 3) uint8 and labels (N, 192, 320) uint8 for the given scene seeds."""
    with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
        pairs = pool.map(_render, seeds, chunksize=16)
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def build_model(num_classes: int) -> Any:
    """Small encoder-decoder: plain 3x3 residual stages down to 1/16, gated global context, a light
    decoder with additive skips (1x1 projections) back to 1/2, then full-resolution logits as
    1x1(upsampled features) + 3x3(input pixels), which sharpens thin classes for little compute.
    Plain convolutions train much faster than depthwise ones on a CPU and run about as fast under
    ONNX Runtime at this size."""
    import torch  # type: ignore[import-not-found]
    from torch import nn

    def cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1, kernel: int = 3) -> nn.Module:
        pad = dilation * (kernel // 2)
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, pad, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class Residual(nn.Module):
        def __init__(self, channels: int, dilation: int = 1) -> None:
            super().__init__()
            self.a = cbr(channels, channels, dilation=dilation)
            self.b = nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(channels)
            )

        def forward(self, x: Any) -> Any:
            return torch.relu(x + self.b(self.a(x)))

    def up(x: Any) -> Any:
        return nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    class DemoRoadSeg(nn.Module):
        def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 80)) -> None:
            super().__init__()
            c0, c1, c2, c3 = widths
            self.stem = cbr(3, c0, stride=2)  # 1/2
            self.stage1 = nn.Sequential(cbr(c0, c1, stride=2), Residual(c1))  # 1/4
            self.stage2 = nn.Sequential(cbr(c1, c2, stride=2), Residual(c2))  # 1/8
            self.stage3 = nn.Sequential(cbr(c2, c3, stride=2), Residual(c3, 2), Residual(c3, 4))  # 1/16
            self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c3, c3, 1), nn.Sigmoid())
            self.proj3, self.proj2, self.proj1 = nn.Conv2d(c3, c2, 1), nn.Conv2d(c2, c1, 1), nn.Conv2d(c1, c0, 1)
            self.dec2, self.dec1, self.dec0 = cbr(c2, c2), cbr(c1, c1), cbr(c0, c0)
            self.head = nn.Conv2d(c0, num_classes, 1)
            self.pixels = nn.Conv2d(3, num_classes, 3, 1, 1)

        def forward(self, x: Any) -> Any:
            x0 = self.stem(x)
            x1 = self.stage1(x0)
            x2 = self.stage2(x1)
            x3 = self.stage3(x2)
            x3 = x3 * self.context(x3)
            y = self.dec2(up(self.proj3(x3)) + x2)
            y = self.dec1(up(self.proj2(y)) + x1)
            y = self.dec0(up(self.proj1(y)) + x0)
            return up(self.head(y)) + self.pixels(x)

    return DemoRoadSeg()


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Square-root median-frequency weights, clipped, so thin classes count without being over-predicted."""
    freq = np.bincount(labels.ravel(), minlength=num_classes)[:num_classes].astype(np.float64)
    freq = np.maximum(freq / freq.sum(), 1e-6)
    return np.clip(np.sqrt(np.median(freq) / freq), 0.5, 3.0)


def confusion(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    valid = truth < num_classes
    idx = truth[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def train(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    minutes: float,
    seed: int,
    batch: int = 12,
    lr: float = 4e-3,
) -> dict[str, float]:
    """Train for a wall-clock budget with AdamW and a time-based warmup + cosine schedule."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    num_classes = len(DEMO_CLASSES)
    weights = torch.tensor(class_weights(labels, num_classes), dtype=torch.float32)
    LOG.info("class weights %s", np.round(weights.numpy(), 2).tolist())
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE_ID)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD).view(1, 3, 1, 1) * 255.0
    images_t = torch.from_numpy(images)  # N, H, W, 3 uint8
    labels_t = torch.from_numpy(labels)
    budget = minutes * 60.0
    start = time.monotonic()
    step, running = 0, 0.0
    next_report = 60.0
    model.train()
    while (elapsed := time.monotonic() - start) < budget:
        progress = elapsed / budget
        warm = min(1.0, (step + 1) / 100)
        for group in opt.param_groups:
            group["lr"] = lr * warm * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * progress)))
        idx = torch.from_numpy(rng.integers(0, len(images), batch))
        x = images_t[idx].permute(0, 3, 1, 2).float()
        y = labels_t[idx].long()
        flip = torch.from_numpy(rng.random(batch) < 0.5)
        x[flip] = x[flip].flip(-1)
        y[flip] = y[flip].flip(-1)
        # Mild exposure/contrast jitter on top of the generator's own lighting variation.
        gain = torch.from_numpy(rng.uniform(0.8, 1.2, (batch, 1, 1, 1))).float()
        bias = torch.from_numpy(rng.uniform(-15, 15, (batch, 1, 1, 1))).float()
        x = ((x * gain + bias).clamp(0, 255) - mean) / std
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if elapsed > next_report:
            next_report += 180.0
            miou = evaluate_torch(model, *val)
            model.train()
            LOG.info("%5.1f min  step %5d  loss %.3f  val mIoU %.3f", elapsed / 60, step, running, miou)
    LOG.info("trained %d steps (%d samples) in %.1f min", step, step * batch, (time.monotonic() - start) / 60)
    return {"steps": float(step), "samples": float(step * batch)}


def evaluate_torch(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    import torch

    model.eval()
    conf = np.zeros((len(DEMO_CLASSES),) * 2, np.int64)
    with torch.no_grad():
        for i in range(0, len(images), 16):
            x = torch.from_numpy(normalise(images[i : i + 16].astype(np.float32)))
            pred = model(x).argmax(1).numpy()
            conf += confusion(pred, labels[i : i + 16], len(DEMO_CLASSES))
    return float(np.nanmean(iou_per_class(conf)))


def normalise(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) float RGB in [0, 255] -> (N, 3, H, W) float32 normalised input."""
    x = (images / 255.0 - np.array(MEAN)) / np.array(STD)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def export_onnx(model: Any, path: Path) -> None:
    import torch

    model.eval()
    dummy = torch.zeros(1, 3, MODEL_H, MODEL_W)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        opset_version=17,
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )


def ort_session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def evaluate_onnx(path: Path, seeds: Sequence[int]) -> dict[str, Any]:
    """Held-out mIoU of the exported model at model resolution, over all classes and scenes."""
    session = ort_session(path)
    n = len(DEMO_CLASSES)
    conf = np.zeros((n, n), np.int64)
    conf_cv_nearest = np.zeros((n, n), np.int64)
    for seed in seeds:
        scene = generate_scene(seed, CAMERA_W, CAMERA_H)
        x = normalise(to_model_input(scene.image)[None])
        pred = session.run(["logits"], {"image": x})[0].argmax(1)[0]
        conf += confusion(pred, to_model_labels(scene.labels), n)
        nearest = cv2.resize(scene.labels, (MODEL_W, MODEL_H), interpolation=cv2.INTER_NEAREST)
        conf_cv_nearest += confusion(pred, nearest, n)
    iou = iou_per_class(conf)
    return {
        "miou": float(np.nanmean(iou)),
        "iou": iou,
        "miou_cv_nearest": float(np.nanmean(iou_per_class(conf_cv_nearest))),
        "pixel_accuracy": float(np.trace(conf) / conf.sum()),
    }


def benchmark_onnx(path: Path, runs: int = 200) -> float:
    """Median ms per 320x192 frame, batch 1, ONNX Runtime CPU with 2 intra-op threads."""
    session = ort_session(path)
    x = np.random.default_rng(0).standard_normal((1, 3, MODEL_H, MODEL_W)).astype(np.float32)
    for _ in range(20):
        session.run(None, {"image": x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, {"image": x})
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def write_spec(path: Path, onnx_name: str, metrics: dict[str, Any]) -> None:
    spec = {
        "spec_version": 1,
        "name": NAME,
        "description": "Bundled demo model trained on synthetic driving scenes (8 classes).",
        "onnx": onnx_name,
        "input": {
            "name": "image",
            "layout": "NCHW",
            "width": MODEL_W,
            "height": MODEL_H,
            "channel_order": "RGB",
            "pixel_range": 1.0,
            "mean": list(MEAN),
            "std": list(STD),
            "resize": "stretch",
        },
        "outputs": [{"name": "logits", "kind": "logits", "channel_axis": 1, "classes": [c.name for c in DEMO_CLASSES]}],
        "classes": [
            {
                "name": c.name,
                "color": list(c.color),
                **({"drivable": True} if c.drivable else {}),
                **({"obstacle": True} if c.obstacle else {}),
            }
            for c in DEMO_CLASSES
        ],
        "ignore_id": IGNORE_ID,
        "metrics": metrics,
    }
    header = "# Written by seg_perception/train_demo_model.py; metrics are informational.\n"
    path.write_text(
        header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=120), encoding="utf-8"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the bundled demo model on synthetic scenes.")
    parser.add_argument("--out", type=Path, default=Path("models"), help="directory for the .onnx and .yaml")
    parser.add_argument("--minutes", type=float, default=27.0, help="wall-clock budget of the training loop")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run (scenes and weights)")
    parser.add_argument("--frames", type=int, default=5000, help="number of distinct training scenes")
    parser.add_argument("--heldout", type=int, default=200, help="held-out scenes (seeds 0..N-1) to evaluate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch

    torch.set_num_threads(2)
    t0 = time.monotonic()
    base = TRAIN_SEED_BASE + args.seed * 1_000_000
    images, labels = render_dataset(range(base, base + args.frames))
    val = render_dataset(range(VAL_SEED_BASE, VAL_SEED_BASE + 48))
    LOG.info("rendered %d training scenes in %.0f s", len(images), time.monotonic() - t0)

    model = build_model(len(DEMO_CLASSES))
    params = sum(p.numel() for p in model.parameters())
    LOG.info("model parameters: %d", params)
    stats = train(model, images, labels, val, args.minutes, args.seed)

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / f"{NAME}.onnx"
    export_onnx(model, onnx_path)
    size_mb = onnx_path.stat().st_size / 1e6
    result = evaluate_onnx(onnx_path, range(args.heldout))
    ms = benchmark_onnx(onnx_path)
    names = [c.name for c in DEMO_CLASSES]
    for name, value in zip(names, result["iou"], strict=True):
        LOG.info("held-out IoU %-13s %.4f", name, value)
    LOG.info(
        "held-out mIoU %.4f (cv2 INTER_NEAREST labels: %.4f), ONNX %.2f MB, ORT %.1f ms/frame",
        result["miou"],
        result["miou_cv_nearest"],
        size_mb,
        ms,
    )
    metrics = {
        "heldout_miou": round(result["miou"], 4),
        "heldout_scenes": args.heldout,
        "heldout_iou": {name: round(float(v), 4) for name, v in zip(names, result["iou"], strict=True)},
        "heldout_pixel_accuracy": round(result["pixel_accuracy"], 4),
        "heldout_labels": "generate_scene seeds 0..N-1 at 1280x720, labels sampled at resize pixel centres",
        "ort_cpu_ms_per_frame": round(ms, 2),
        "ort_cpu_threads": 2,
        "parameters": int(params),
        "training_scenes": args.frames,
        "training_steps": int(stats["steps"]),
        "training_minutes": round((time.monotonic() - t0) / 60, 1),
        "training_seed": args.seed,
    }
    write_spec(args.out / f"{NAME}.yaml", onnx_path.name, metrics)

    from seg_perception.core.spec_loader import load_model_spec

    load_model_spec(args.out / f"{NAME}.yaml")  # the spec we wrote must load and match the ONNX file
    LOG.info("wrote %s and %s in %.1f min", onnx_path, args.out / f"{NAME}.yaml", (time.monotonic() - t0) / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
