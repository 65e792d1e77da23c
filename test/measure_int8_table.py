"""Regenerates the README's INT8 table (dev-only, not collected by pytest; a few minutes on 2 cores).

    .venv/bin/python test/measure_int8_table.py OUT_DIR

For the demo model and the two fixture nets of int8_fixtures.py, at a 640x360 camera: `quantize` per
method (32 generated calibration scenes, gate on 12 independent held-out ones, --accept-accuracy-loss so
refused graphs can still be timed), `eval` of the demo model's INT8 graph against ground truth, and fps as
the median of 40 interleaved ONNX Runtime runs (2 threads). Prints one markdown row per model and method.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).parent))
import int8_fixtures

from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.synthetic.scenes import generate_scene

CAMERA = (640, 360)
METHODS = ("minmax", "percentile", "entropy", "percentile+mixed")


def cli(home: Path, *args: str) -> None:
    env = {**os.environ, "HOME": str(home)}
    subprocess.run([sys.executable, "-m", "seg_perception.cli", *args], env=env, check=False, capture_output=True)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main(out: Path) -> None:
    for name, seed, count in (("calib", 700_000, 32), ("heldout", 900_000, 12)):
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            scene = generate_scene(seed + i, *CAMERA)
            cv2.imwrite(str(out / name / f"{name}_{i:02d}.png"), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(out / name / f"{name}_{i:02d}_labels.png"), scene.labels)
    models = {
        "demo": default_spec_path(),
        "8-class fixture": int8_fixtures.multiclass_spec(out),
        "two-head fixture": int8_fixtures.two_head_spec(out),
    }
    labelled = ["--images", str(out / "heldout"), "--labels", str(out / "heldout")]
    cli(out / "home_fp32", "eval", *labelled, "--json", str(out / "demo_fp32.json"))
    miou_fp32 = json.loads((out / "demo_fp32.json").read_text())["miou"]
    frame = cv2.cvtColor(cv2.imread(str(out / "heldout" / "heldout_00.png")), cv2.COLOR_BGR2RGB)[None]
    for model, spec in models.items():
        fused = compile_fused_graph(load_model_spec(spec), *CAMERA, batch=None)
        graphs: dict[str, onnx.ModelProto] = {"fp32": fused}
        gates: dict[str, dict] = {}
        for method in METHODS:
            home = out / f"home_{model.replace(' ', '_')}_{method}"
            extra = ["--mixed-precision"] if method.endswith("+mixed") else []
            size = f"{CAMERA[0]}x{CAMERA[1]}"
            cli(home, "quantize", "--model", str(spec), "--input-size", size, "--calib", str(out / "calib"),
                "--val", str(out / "heldout"), "--method", method.removesuffix("+mixed"), *extra,
                "--accept-accuracy-loss", "--out", str(home / "qdq.onnx"))  # fmt: skip
            side = next((home / ".cache" / "seg_perception" / "engines").glob("*qdq.onnx.json"))
            gates[method] = json.loads(side.read_text())["info"]
            graphs[method] = onnx.load(str(home / "qdq.onnx"))
            if model == "demo":
                cli(home, "eval", *labelled, "--backend", "onnxruntime:int8-qdq", "--json", str(home / "eval.json"))
                gates[method]["miou_change"] = json.loads((home / "eval.json").read_text())["miou"] - miou_fp32
        sessions = {k: session(g) for k, g in graphs.items()}
        times: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(40):
            for key, s in sessions.items():
                start = time.perf_counter()
                s.run(["labels"], {"image": frame})
                times[key].append(time.perf_counter() - start)
        fps = {k: 1 / statistics.median(v) for k, v in times.items()}
        for method in METHODS:
            info = gates[method]
            gate = info["gate"]
            ious = [v for v in gate["per_class_iou_vs_fp32"].values() if v is not None]
            change = f"{info['miou_change'] * 100:+.2f} pts".replace("-", "−") if "miou_change" in info else "–"
            kept = f" ({len(info['fp32_nodes'])} of {info['weighted_nodes']} layers fp32)" if info["fp32_nodes"] else ""
            print(
                f"| {model} | {method.replace('+mixed', ' + mixed')}{kept} | {gate['label_agreement'] * 100:.2f} % | "
                f"{gate['miou_vs_fp32'] * 100:.1f} % | {change} | {min(ious) * 100:.1f} % | "
                f"{'pass' if gate['passed'] else 'refused'} | {fps['fp32']:.1f} → {fps[method]:.1f} |"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
