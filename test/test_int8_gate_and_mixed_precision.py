"""`quantize` checks every INT8 graph against fp32 on held-out frames, repairs it with mixed precision, and
caches only what passed; the engine builder and TensorRT backend never run a graph that did not.

Fixture nets (test/int8_fixtures.py) have an outlier channel, so full INT8 fails the gate and keeping one
layer in fp32 repairs it. Calibration on uniform mid-grey frames is the deliberately bad set: every
activation range is a sliver of the real one (black frames are not bad enough for the demo model: the
gate measured 99.3 % agreement after calibrating it on black frames, and rightly let that graph pass).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from int8_fixtures import multiclass_spec, narrow_range_spec, two_head_spec
from int8_support import needs_int8_quantizer
from tensorrt_fixtures import fake_gpu  # noqa: F401 - the TensorRT/pycuda fake, as a fixture

from seg_perception.backends.engine_artefacts import load_cached_qdq, qdq_key, qdq_path
from seg_perception.core import engine_cache
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.synthetic.scenes import generate_scene

pytestmark = needs_int8_quantizer

CAMERA = "96x64"
W, H = 96, 64


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    cmd = [sys.executable, "-m", "seg_perception.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)


def _errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def _write_frames(directory: Path, frames: list[np.ndarray]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(directory / f"frame_{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return directory


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("int8_gate")
    found = {
        "multiclass": multiclass_spec(d),
        "two_head": two_head_spec(d),
        "narrow": narrow_range_spec(d),
        "calib": _write_frames(d / "calib", [generate_scene(20_000 + i, W, H).image for i in range(8)]),
        "val": _write_frames(d / "val", [generate_scene(30_000 + i, W, H).image for i in range(4)]),
        "grey": _write_frames(d / "grey", [np.full((H, W, 3), 124, np.uint8)] * 6),
        "one": _write_frames(d / "one", [generate_scene(1, W, H).image]),
        "root": d,
    }
    found["demo"] = default_spec_path()  # shipped in models/: a missing one fails, it is not skipped
    return found


def _quantize(data: dict[str, Path], net: str, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["quantize", "--model", str(data[net]), "--input-size", CAMERA, "--cache-dir", str(cache)]
    return _cli(*args, "--out", str(cache.parent / f"{net}.qdq.onnx"), *extra, home=data["root"])


def _fused(spec: Path) -> onnx.ModelProto:
    return compile_fused_graph(load_model_spec(spec), W, H, batch=None)


def _sidecar(spec: Path, cache: Path) -> dict:
    return json.loads(engine_cache.sidecar_path(qdq_path(cache, _fused(spec))).read_text())


@pytest.mark.parametrize("net", ["demo", "multiclass", "two_head"])
def test_bad_calibration_is_refused_in_one_line_and_not_cached(data: dict[str, Path], net: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = _quantize(data, net, cache, "--calib", str(data["grey"]), "--val", str(data["val"]))
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = _errors(proc)
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: INT8 failed its accuracy gate (label agreement ")
    assert "--mixed-precision" in errors[0] and "--accept-accuracy-loss" in errors[0]
    assert not qdq_path(cache, _fused(data[net])).exists()
    assert not (tmp_path / f"{net}.qdq.onnx").exists()


@pytest.mark.parametrize(("net", "kept"), [("multiclass", ["model/mix"]), ("two_head", ["model/lane_head"])])
def test_mixed_precision_recovers_what_full_int8_loses(
    data: dict[str, Path], net: str, kept: list[str], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    calib = ["--calib", str(data["calib"]), "--val", str(data["val"])]
    full = _quantize(data, net, cache, *calib)
    assert full.returncode == 1 and len(_errors(full)) == 1, full.stderr[-2000:]
    assert not qdq_path(cache, _fused(data[net])).exists()

    mixed = _quantize(data, net, cache, *calib, "--mixed-precision")
    assert mixed.returncode == 0, mixed.stderr[-2000:]
    info = _sidecar(data[net], cache)["info"]
    assert info["fp32_nodes"] == kept  # the layer fed by the outlier channel, found by sensitivity
    assert info["mixed_precision"]["sensitivity"][0]["node"] == kept[0]
    assert info["gate"]["passed"] is True and info["gate"]["label_agreement"] >= 0.98
    assert min(v for v in info["gate"]["per_class_iou_vs_fp32"].values() if v is not None) >= 0.90
    assert info["full_int8"]["passed"] is False  # full INT8 failed: agreement or a class collapsed
    assert info["full_int8"]["failures"]
    assert info["held_out"] == str(data["val"]) and info["held_out_frames"] == 4
    assert "miou_change" not in info  # nothing scored on demo scenes for a user model
    qdq = onnx.load(str(tmp_path / f"{net}.qdq.onnx"))
    meta = {p.key: p.value for p in qdq.metadata_props}
    assert meta["seg_perception.fp32_nodes"] == ",".join(kept)
    quantized_inputs = {n.input[0] for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    kept_node = next(n for n in qdq.graph.node if n.name == kept[0])
    assert kept_node.input[0] not in {n.output[0] for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    assert quantized_inputs


def test_default_calibration_caches_a_gated_graph_and_small_sets_never_replace_it(
    data: dict[str, Path], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    good = _quantize(data, "narrow", cache, "--calib", str(data["calib"]))  # default method: percentile
    assert good.returncode == 0, good.stderr[-2000:]
    side = _sidecar(data["narrow"], cache)
    assert side["info"]["method"] == "percentile" and side["info"]["calibration_frames"] == 6
    assert side["info"]["held_out"] == "last 2 frames of --calib" and side["info"]["gate"]["passed"] is True
    assert side["info"]["calibration_settings"] == {"method": "percentile", "num_bins": 2048, "percentile": 99.999}
    before = qdq_path(cache, _fused(data["narrow"])).read_bytes()

    small = _quantize(data, "narrow", cache, "--calib", str(data["one"]))
    assert small.returncode == 2
    assert _errors(small) == [
        f"error: --calib {data['one']} has 1 readable frame(s); INT8 calibration needs at least 6 "
        "(4 to calibrate, 2 held out to check accuracy): add frames (or raise --frames)"
    ]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    unreadable = _quantize(data, "narrow", cache, "--calib", str(broken))
    assert unreadable.returncode == 2 and "has 0 readable frame(s)" in _errors(unreadable)[0]

    accepted = _quantize(
        data, "narrow", cache, "--calib", str(data["grey"]), "--val", str(data["val"]), "--accept-accuracy-loss"
    )
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert "not replacing" in accepted.stderr  # a failing graph never replaces one that passed
    assert qdq_path(cache, _fused(data["narrow"])).read_bytes() == before


def test_non_default_gate_thresholds_change_the_verdict(data: dict[str, Path], tmp_path: Path) -> None:
    """--min-agreement and --min-class-iou each decide on their own: the narrow net passes the defaults
    (98.2 % agreement, lowest class IoU 93.3 %, see the test above) and fails a raised bar of either one; the
    multiclass net fails the defaults (test_mixed_precision_recovers_what_full_int8_loses) and passes a
    lowered pair, which its sidecar records."""
    calib = ["--calib", str(data["calib"])]
    strict_agreement = _quantize(data, "narrow", tmp_path / "a" / "cache", *calib, "--min-agreement", "99.5")
    assert strict_agreement.returncode == 1, strict_agreement.stderr[-2000:]
    (error,) = _errors(strict_agreement)
    assert re.search(r"\(label agreement [\d.]+% < 99\.5%\) and was not cached", error), error
    assert not qdq_path(tmp_path / "a" / "cache", _fused(data["narrow"])).exists()

    strict_iou = _quantize(data, "narrow", tmp_path / "i" / "cache", *calib, "--min-class-iou", "97")
    assert strict_iou.returncode == 1, strict_iou.stderr[-2000:]
    (error,) = _errors(strict_iou)
    assert re.search(r"\(class IoU vs fp32 under 97\.0%: [^;]+\) and was not cached", error), error
    assert not qdq_path(tmp_path / "i" / "cache", _fused(data["narrow"])).exists()

    cache = tmp_path / "l" / "cache"
    lenient = ["--val", str(data["val"]), "--min-agreement", "40", "--min-class-iou", "0"]
    loose = _quantize(data, "multiclass", cache, *calib, *lenient)
    assert loose.returncode == 0 and not _errors(loose), loose.stderr[-2000:]
    gate = _sidecar(data["multiclass"], cache)["info"]["gate"]
    assert gate["passed"] is True and gate["label_agreement"] < 0.98  # the default would have refused it
    assert (gate["min_agreement"], gate["min_class_iou"]) == (0.4, 0.0)


def test_engine_builder_refuses_a_cached_graph_without_a_passed_gate(data: dict[str, Path], tmp_path: Path) -> None:
    from seg_perception.core.quantization import quantize_fused_graph

    fused = _fused(data["narrow"])
    qdq = quantize_fused_graph(fused, [generate_scene(i, W, H).image for i in range(4)])
    path = qdq_path(tmp_path, fused)
    engine_cache.write_artefact(path, qdq_key(fused), qdq.SerializeToString(), {"method": "percentile"})
    with pytest.raises(engine_cache.ArtefactCacheError, match="has not passed an INT8 accuracy gate"):
        load_cached_qdq(fused, tmp_path)
    failed = {"passed": False, "accepted_accuracy_loss": False, "label_agreement": 0.5}
    engine_cache.write_artefact(path, qdq_key(fused), qdq.SerializeToString(), {"gate": failed})
    with pytest.raises(engine_cache.ArtefactCacheError, match="has not passed an INT8 accuracy gate"):
        load_cached_qdq(fused, tmp_path)
    accepted = {**failed, "accepted_accuracy_loss": True, "miou_vs_fp32": 0.4, "held_out_frames": 3}
    engine_cache.write_artefact(path, qdq_key(fused), qdq.SerializeToString(), {"gate": accepted})
    _, gate = load_cached_qdq(fused, tmp_path)
    assert gate["accepted_accuracy_loss"] is True


def test_build_engine_names_a_missing_spec_before_tensorrt(tmp_path: Path) -> None:
    proc = _cli("build-engine", "--model", str(tmp_path / "missing.yaml"), "--precision", "int8", home=tmp_path)
    assert proc.returncode == 2
    errors = _errors(proc)
    assert len(errors) == 1 and "missing.yaml" in errors[0] and "TensorRT" not in errors[0], proc.stderr


def test_compare_calibrates_with_the_chosen_method_and_leaves_no_lock_file(
    data: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "compare.json"
    args = ["compare", "--model", str(data["two_head"]), "--images", str(data["val"]), "--b", "onnxruntime:int8-qdq"]
    proc = _cli(*args, "--calib", str(data["calib"]), "--calib-method", "minmax", "--json", str(out), home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert any(f"calibrated on 8 frames of {data['calib']} (minmax), not gated" in n for n in result["notes"])
    assert set(result["per_class_iou"]) == {"background", "drivable", "lane"}
    assert len(result["worst_frames"]) == 4
    # No cached graph: the lookup must not leave a 0-byte lock file (or a cache directory) behind.
    proc = _cli(*args, "--json", str(out), home=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not list(tmp_path.rglob("*.lock")) and not (tmp_path / ".cache" / "seg_perception").exists()


@pytest.mark.usefixtures("fake_gpu")
def test_tensorrt_int8_engine_reports_its_gate_and_refuses_an_ungated_graph(
    data: dict[str, Path], tmp_path: Path
) -> None:
    """What the node's /diagnostics 'backend' value shows (Segmenter.describe_backend -> backend.describe())."""
    from seg_perception.backends.tensorrt_backend import create_tensorrt_backend
    from seg_perception.core.errors import BackendError
    from seg_perception.core.quantization import quantize_fused_graph

    fused = _fused(data["narrow"])
    qdq = quantize_fused_graph(fused, [generate_scene(i, W, H).image for i in range(4)])
    path = qdq_path(tmp_path, fused)
    engine_cache.write_artefact(path, qdq_key(fused), qdq.SerializeToString(), {"method": "percentile"})
    with pytest.raises(BackendError, match="has not passed an INT8 accuracy gate"):
        create_tensorrt_backend(fused, precision="int8", engine_cache_dir=tmp_path)
    gate = {"passed": True, "label_agreement": 0.9912, "miou_vs_fp32": 0.9731, "held_out_frames": 16}
    engine_cache.write_artefact(path, qdq_key(fused), qdq.SerializeToString(), {"gate": gate})
    with create_tensorrt_backend(fused, precision="int8", engine_cache_dir=tmp_path) as backend:
        assert "int8 gate passed: agreement 99.12%, mIoU vs fp32 97.31% on 16 held-out frames" in backend.describe()


def test_gate_holds_only_classes_with_enough_pixels_to_the_iou_floor() -> None:
    from seg_perception.core.int8_gate import GateThresholds, check_accuracy

    reference = [np.zeros((100, 100), np.uint8)]
    reference[0][:, 50:] = 1
    reference[0][0, :5] = 2  # 5 of 10 000 pixels: below MIN_CLASS_SHARE
    labels = reference[0].copy()
    labels[0, :5] = 0  # INT8 loses the rare class entirely ...
    model = _labels_echo_model(labels)
    check = check_accuracy(model, [np.zeros((1, 100, 100, 3), np.uint8)], reference, ["a", "b", "c"], [0])
    assert check.per_class_iou["c"] == 0.0 and "c" not in check.gated_classes
    assert check.failures(GateThresholds()) == []  # ... which is reported, not gated
    labels[:10, 50:] = 0  # 500 pixels of b flipped: b's IoU 0.9 exactly, a's 4995/5500, agreement 94.95 %
    check = check_accuracy(
        _labels_echo_model(labels), [np.zeros((1, 100, 100, 3), np.uint8)], reference, ["a", "b", "c"], [0]
    )
    assert check.failures(GateThresholds(min_agreement=0.95, min_class_iou=0.9)) == ["label agreement 94.95% < 95.0%"]
    assert check.failures(GateThresholds(min_agreement=0.9, min_class_iou=0.905)) == [
        "class IoU vs fp32 under 90.5%: b 90.0%"
    ]
    assert check.drivable_agreement == pytest.approx(0.9495)


def _labels_echo_model(labels: np.ndarray) -> onnx.ModelProto:
    """A graph with the fused graph's I/O names that returns fixed labels (to test the scoring alone)."""
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(labels[np.newaxis].astype(np.uint8), "fixed")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["fixed"], ["labels"]), helper.make_node("Shape", ["image"], ["shape"])],
        "echo",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 100, 100, 3])],
        [
            helper.make_tensor_value_info("labels", TensorProto.UINT8, [1, 100, 100]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [4]),
        ],
        [const],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
