"""The INT8 CPU variant: ONNX Runtime runs it as integer kernels from layer to layer; TensorRT's graph keeps
its own Q/DQ placement; the two never share a cache slot or key; the same accuracy gate holds for both.

What is inspected is ONNX Runtime's *optimized* graph (``SessionOptions.optimized_model_filepath``, the
optimization level the backend uses): what the CPU actually executes, after its QDQ fusions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from int8_fixtures import multiclass_spec
from int8_support import needs_int8_quantizer
from test_int8_gate_and_mixed_precision import _cli, _errors, _write_frames

from seg_perception.backends.engine_artefacts import EngineBuildError, load_cached_qdq, qdq_key, qdq_path, store_qdq
from seg_perception.backends.engine_builder import graph_for_precision
from seg_perception.core import engine_cache
from seg_perception.core.graph_compiler import compile_fused_graph, graph_digest
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.qdq_recipes import WEIGHTED_OP_TYPES, graph_target
from seg_perception.core.quantization import POST_PREFIX, PRE_PREFIX, quantize_fused_graph, weighted_nodes
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.evaluation.runners import Calibration, Variant, VariantRunner
from seg_perception.synthetic.scenes import generate_scene

pytestmark = needs_int8_quantizer

W, H = 96, 64


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> onnx.ModelProto:
    spec = load_model_spec(multiclass_spec(tmp_path_factory.mktemp("cpu_variant")))
    return compile_fused_graph(spec, W, H, batch=None)


@pytest.fixture(scope="module")
def graphs(fused: onnx.ModelProto) -> dict[str, onnx.ModelProto]:
    frames = [generate_scene(20_000 + i, W, H).image for i in range(6)]
    return {t: quantize_fused_graph(fused, frames, method="minmax", target=t) for t in ("tensorrt", "onnxruntime")}


def _optimized(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as OnnxRuntimeBackend
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return onnx.load(str(path))


def _model_part(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if not n.name.startswith((PRE_PREFIX, POST_PREFIX))]


def _float_between_integer_convs(model: onnx.ModelProto) -> tuple[int, list[str]]:
    """(pairs of QLinearConvs joined by 8-bit tensors only, QLinearConvs whose input left a QLinearConv
    through a DequantizeLinear): walking back from each QLinearConv's data input to the previous one."""
    producer = {o: n for n in model.graph.node for o in n.output}
    integer_pairs, through_float = 0, []
    for conv in (n for n in model.graph.node if n.op_type == "QLinearConv"):
        node, saw_float = producer.get(conv.input[0]), False
        while node is not None and node.op_type != "QLinearConv":
            saw_float = saw_float or node.op_type == "DequantizeLinear"
            if node.op_type in ("Conv", "FusedConv") or node.name.startswith(PRE_PREFIX):
                node = None  # a conv kept in fp32, or the camera input: not two quantized convs
                break
            node = producer.get(node.input[0])
        if node is not None:
            if saw_float:
                through_float.append(conv.name)
            else:
                integer_pairs += 1
    return integer_pairs, through_float


def test_cpu_variant_runs_integer_kernels_with_no_float_between_quantized_convs(
    graphs: dict[str, onnx.ModelProto], fused: onnx.ModelProto, tmp_path: Path
) -> None:
    cpu = _optimized(graphs["onnxruntime"], tmp_path / "cpu.onnx")
    ops = [n.op_type for n in _model_part(cpu)]
    # stem reads the 3-channel image: fp32 (core.qdq_recipes.CPU_MIN_INPUT_CHANNELS); mix is an integer kernel
    # whose uint8 output took in the ReLU; classifier hands its logits to argmax in fp32.
    assert len(weighted_nodes(fused, "onnxruntime")) == len(weighted_nodes(fused)) - 1 == 2
    assert ops.count("QLinearConv") == 1 and "Relu" not in ops
    conv_inputs = {n.op_type: n.input[0] for n in _model_part(cpu) if n.op_type in ("QLinearConv", "Conv")}
    producer = {o: n for n in cpu.graph.node for o in n.output}
    assert producer[conv_inputs["Conv"]].op_type == "DequantizeLinear"  # the classifier, float out
    # TensorRT's graph on ONNX Runtime: every weighted layer reads a DequantizeLinear output (float kernels).
    trt = _optimized(graphs["tensorrt"], tmp_path / "trt.onnx")
    assert "QLinearConv" not in [n.op_type for n in _model_part(trt)]


def test_demo_model_convs_pass_8_bit_tensors_to_each_other(tmp_path: Path) -> None:
    fused = compile_fused_graph(load_model_spec(default_spec_path()), 160, 96, batch=None)
    frames = [generate_scene(20_000 + i, 160, 96).image for i in range(2)]
    qdq = quantize_fused_graph(fused, frames, "minmax", target="onnxruntime")
    meta = {p.key: p.value for p in qdq.metadata_props}
    assert sorted(meta["seg_perception.fp32_narrow_convs"].split(",")) == [
        "model//pixels/Conv",
        "model//stem/stem.0/Conv",
    ]
    # The float tail: the 1x1 head, the logit Resize after it and the Add of the two heads run in fp32 (their
    # output goes to argmax in fp32 anyway), with no Q/DQ pair left on them.
    assert meta["seg_perception.fp32_tail"].split(",") == ["model//head/Conv", "model//Resize_3", "model//Add_3"]
    tail = [n for n in qdq.graph.node if n.name in ("model//head/Conv", "model//Resize_3", "model//Add_3")]
    producer = {o: n for n in qdq.graph.node for o in n.output}
    assert [n.name for n in tail for i in n.input if i in producer and producer[i].op_type == "DequantizeLinear"] == [
        "model//head/Conv"  # its input, dec0's 8-bit output; its weights stay fp32
    ]
    cpu = _optimized(qdq, tmp_path / "demo.onnx")
    ops = [n.op_type for n in _model_part(cpu)]
    assert ops.count("QLinearConv") == len(weighted_nodes(fused, "onnxruntime")) == 18
    assert ops.count("QLinearAdd") == 7 and "Relu" not in ops
    # 14 conv-to-conv paths stay 8-bit; the 3 decoder convs after a bilinear Resize read one that ONNX Runtime
    # runs in float between a DQ and a Q (its uint8 bilinear Resize measured 2x slower): the only float left.
    pairs, through_float = _float_between_integer_convs(cpu)
    assert pairs == 14
    assert sorted(n.split("/Conv")[0] for n in through_float) == [
        "model//dec0/dec0.0",
        "model//dec1/dec1.0",
        "model//dec2/dec2.0",
    ]


def test_tensorrt_graph_keeps_its_explicit_quantization_placement(graphs: dict[str, onnx.ModelProto]) -> None:
    trt = graphs["tensorrt"]
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in trt.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    dq = [n for n in trt.graph.node if n.op_type == "DequantizeLinear"]
    assert dq, "no Q/DQ at all"
    # Q/DQ only on the inputs of weighted layers (activations and fp32 weights), never on their outputs.
    assert {c.op_type for n in dq for c in consumers[n.output[0]]} <= set(WEIGHTED_OP_TYPES)
    zero_points = {i.name: i for i in trt.graph.initializer}
    for q in (n for n in trt.graph.node if n.op_type == "QuantizeLinear"):
        point = onnx.numpy_helper.to_array(zero_points[q.input[2]])
        assert point.dtype == np.int8 and not point.any(), q.name  # symmetric int8, zero point 0
    assert graph_target(trt) == "tensorrt" and graph_target(graphs["onnxruntime"]) == "onnxruntime"
    # The CPU variant: uint8 activations with zero points, int32 biases (QLinearConv's form).
    cpu_types = {
        onnx.numpy_helper.to_array(i).dtype for i in graphs["onnxruntime"].graph.initializer if "zero_point" in i.name
    }
    assert np.dtype(np.uint8) in cpu_types
    assert any(i.data_type == onnx.TensorProto.INT32 for i in graphs["onnxruntime"].graph.initializer)


def test_each_target_has_its_own_cache_slot_and_key_and_engines_refuse_the_cpu_graph(
    graphs: dict[str, onnx.ModelProto], fused: onnx.ModelProto, tmp_path: Path
) -> None:
    assert qdq_path(tmp_path, fused, "tensorrt") != qdq_path(tmp_path, fused, "onnxruntime")
    assert qdq_key(fused, "tensorrt") != qdq_key(fused, "onnxruntime")
    gate = {"passed": True, "label_agreement": 1.0, "miou_vs_fp32": 1.0, "held_out_frames": 2}
    stored = store_qdq(fused, graphs["onnxruntime"], tmp_path, {"gate": gate})
    assert stored == qdq_path(tmp_path, fused, "onnxruntime")
    loaded, _ = load_cached_qdq(fused, tmp_path, "onnxruntime")
    assert graph_target(loaded) == "onnxruntime"
    with pytest.raises(engine_cache.ArtefactCacheError):  # the TensorRT slot is empty: never served the CPU graph
        load_cached_qdq(fused, tmp_path, "tensorrt")
    # A CPU graph copied into the TensorRT slot by hand fails the key (target and format differ).
    trt_slot = qdq_path(tmp_path, fused, "tensorrt")
    trt_slot.write_bytes(stored.read_bytes())
    sidecar = json.loads(engine_cache.sidecar_path(stored).read_text())
    engine_cache.sidecar_path(trt_slot).write_text(json.dumps(sidecar))
    with pytest.raises(engine_cache.ArtefactCacheError, match="key mismatch"):
        load_cached_qdq(fused, tmp_path, "tensorrt")
    with pytest.raises(EngineBuildError, match="made for onnxruntime"):
        graph_for_precision(fused, "int8", 10, graphs["onnxruntime"])
    assert graph_for_precision(fused, "int8", 10, graphs["tensorrt"]) is graphs["tensorrt"]


def test_a_tensorrt_qdq_graph_cached_before_the_cpu_recipe_still_loads(
    graphs: dict[str, onnx.ModelProto], fused: onnx.ModelProto, tmp_path: Path
) -> None:
    """A car's cache holds TensorRT QDQ graphs keyed {format: qdq-trt/2, graph_sha256} (the key before the CPU
    recipe existed); the next int8 engine rebuild must find them, not ask to calibrate again."""
    gate = {"passed": True, "label_agreement": 1.0, "miou_vs_fp32": 1.0, "held_out_frames": 2}
    slot = qdq_path(tmp_path, fused, "tensorrt")
    old_key = {"format": "qdq-trt/2", "graph_sha256": graph_digest(fused)}
    engine_cache.write_artefact(slot, old_key, graphs["tensorrt"].SerializeToString(), {"gate": gate})
    loaded, loaded_gate = load_cached_qdq(fused, tmp_path, "tensorrt")
    assert graph_target(loaded) == "tensorrt" and loaded_gate["passed"] is True


def test_onnxruntime_int8_runs_the_cpu_variant(tmp_path: Path) -> None:
    spec = load_model_spec(multiclass_spec(tmp_path))
    frames = _write_frames(tmp_path / "calib", [generate_scene(20_000 + i, W, H).image for i in range(4)])
    runner = VariantRunner(spec, Variant("onnxruntime", "int8-qdq"), calibration=Calibration(frames, "minmax"))
    fused = compile_fused_graph(spec, W, H, batch=None)
    assert graph_target(runner._graph(fused, W, H)) == "onnxruntime"
    assert "CPU-variant" in runner.graph_notes[0]


def test_gate_refuses_a_bad_cpu_variant_and_caches_a_good_one_in_its_own_slot(tmp_path: Path) -> None:
    grey = _write_frames(tmp_path / "grey", [np.full((H, W, 3), 124, np.uint8)] * 6)
    val = _write_frames(tmp_path / "val", [generate_scene(30_000 + i, W, H).image for i in range(4)])
    good = _write_frames(tmp_path / "calib", [generate_scene(20_000 + i, W, H).image for i in range(8)])
    spec = multiclass_spec(tmp_path)
    cache = tmp_path / "cache"
    base = ["quantize", "--target", "onnxruntime", "--model", str(spec), "--input-size", f"{W}x{H}"]
    base += ["--cache-dir", str(cache), "--out", str(tmp_path / "cpu.onnx"), "--val", str(val)]
    fused = compile_fused_graph(load_model_spec(spec), W, H, batch=None)
    refused = _cli(*base, "--calib", str(grey), home=tmp_path)
    assert refused.returncode == 1, refused.stderr
    assert len(_errors(refused)) == 1 and "failed its accuracy gate" in _errors(refused)[0]
    assert not qdq_path(cache, fused, "onnxruntime").exists()
    passed = _cli(*base, "--calib", str(good), "--mixed-precision", home=tmp_path)
    assert passed.returncode == 0, passed.stderr
    sidecar = json.loads(engine_cache.sidecar_path(qdq_path(cache, fused, "onnxruntime")).read_text())
    assert sidecar["info"]["target"] == "onnxruntime" and sidecar["info"]["gate"]["passed"] is True
    assert sidecar["key"] == {"format": "qdq-ort-cpu/2", "graph_sha256": graph_digest(fused)}
    speed = sidecar["info"]["cpu_speed"]  # measured, interleaved, with the load it was measured under
    assert speed["fp32_ms"] > 0 and speed["int8_ms"] > 0 and speed["runs"] == 5
    assert speed["speedup"] == pytest.approx(speed["fp32_ms"] / speed["int8_ms"], rel=0.05)
    assert "CPU speed: fp32" in passed.stderr and "load_average" in speed
    assert not qdq_path(cache, fused, "tensorrt").exists()  # the TensorRT slot is not written by a CPU quantize


def test_a_model_of_only_image_reading_convs_is_still_quantized(tmp_path: Path) -> None:
    from tiny_models import conv_logits_model, spec_dict, write_spec

    conv_logits_model(tmp_path / "m.onnx", 8, 48, 64, seed=0)  # one 1x1 conv on the 3-channel image
    spec = load_model_spec(write_spec(tmp_path / "m.yaml", spec_dict("m.onnx", [f"c{i}" for i in range(8)])))
    fused = compile_fused_graph(spec, W, H, batch=None)
    frames = [generate_scene(20_000 + i, W, H).image for i in range(2)]
    qdq = quantize_fused_graph(fused, frames, "minmax", target="onnxruntime")
    assert {p.key: p.value for p in qdq.metadata_props}["seg_perception.fp32_narrow_convs"] == ""
    conv = next(n for n in _model_part(qdq) if n.op_type == "Conv")
    producer = {o: n for n in qdq.graph.node for o in n.output}
    assert [producer[name].op_type for name in conv.input[:2]] == ["DequantizeLinear"] * 2  # int8 image, weights
