"""One engine cache holding two precisions, two input sizes and two graphs: every engine is its own, its
sidecar records its precision, and an engine of one precision is never served for another.

Built with the TensorRT stand-in (test/fake_tensorrt.py), whose engine header records the builder flags, so
the precision an engine was really built with is read from the engine itself, not from the cache's claim.
"""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import onnx
import pytest
from fake_cuda import FakeDriver
from fake_tensorrt import ENGINE_MAGIC, FakeTensorRT
from tensorrt_fixtures import fake_gpu  # noqa: F401  (fixture)
from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.backends.engine_artefacts import BuildOptions
from seg_perception.backends.engine_builder import ensure_engine
from seg_perception.core.engine_cache import ArtefactCacheError, sidecar_path
from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.spec_loader import load_model_spec

SIZES = ((160, 120), (128, 96))
PRECISIONS = ("fp32", "fp16")


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[tuple[int, int], onnx.ModelProto]]:
    """Two different networks (other weights), each compiled for both camera sizes."""
    out = {}
    for name, seed in (("a", 0), ("b", 1)):
        d = tmp_path_factory.mktemp(f"model_{name}")
        conv_logits_model(d / "m.onnx", 3, 48, 64, seed=seed)
        spec = load_model_spec(write_spec(d / "m.yaml", spec_dict("m.onnx", ["road", "car", "sky"])))
        out[name] = {size: compile_fused_graph(spec, *size) for size in SIZES}
    return out


def _flags(engine: bytes) -> set[str]:
    assert engine.startswith(ENGINE_MAGIC)
    (length,) = struct.unpack_from("<I", engine, len(ENGINE_MAGIC))
    start = len(ENGINE_MAGIC) + 4
    return set(json.loads(engine[start : start + length])["flags"])


def _expected_flags(precision: str) -> set[str]:
    return {"FP16", "TF32"} if precision == "fp16" else set()


def test_two_precisions_sizes_and_graphs_give_eight_engines_in_one_cache(
    tmp_path: Path,
    graphs: dict,
    fake_gpu: tuple[FakeTensorRT, FakeDriver],  # noqa: F811
) -> None:
    trt, _ = fake_gpu
    cache = tmp_path / "cache"
    combos = list(itertools.product(sorted(graphs), SIZES, PRECISIONS))
    first = {c: ensure_engine(graphs[c[0]][c[1]], BuildOptions(c[2], 1), cache, allow_build=True) for c in combos}
    assert all(r.built for r in first.values())
    assert trt.builds == 8
    assert len({r.path for r in first.values()}) == 8
    engines = sorted(p.name for p in cache.glob("*.engine"))
    assert len(engines) == 8
    for (_, size, precision), result in first.items():
        assert _flags(result.data) == _expected_flags(precision)
        sidecar = json.loads(sidecar_path(result.path).read_text())
        assert sidecar["key"]["precision"] == precision
        assert sidecar["info"]["camera_hw"] == [size[1], size[0]]
    # Digests of the two graphs and two sizes differ in every sidecar pair that should differ.
    keys = {c: json.loads(sidecar_path(r.path).read_text())["key"] for c, r in first.items()}
    assert len({json.dumps(k, sort_keys=True) for k in keys.values()}) == 8

    again = {c: ensure_engine(graphs[c[0]][c[1]], BuildOptions(c[2], 1), cache, allow_build=False) for c in combos}
    assert not any(r.built for r in again.values())
    assert trt.builds == 8
    for c in combos:
        assert again[c].data == first[c].data
        assert _flags(again[c].data) == _expected_flags(c[2])


def test_fp16_engine_is_never_served_for_an_fp32_request(
    tmp_path: Path,
    graphs: dict,
    fake_gpu: tuple[FakeTensorRT, FakeDriver],  # noqa: F811
) -> None:
    """The same output file (build-engine --out) asked for with the other precision: refused, or rebuilt."""
    trt, _ = fake_gpu
    fused = graphs["a"][SIZES[0]]
    out = tmp_path / "cache" / "deployed.engine"
    built16 = ensure_engine(fused, BuildOptions("fp16", 1), tmp_path / "cache", allow_build=True, out=out)
    assert _flags(built16.data) == {"FP16", "TF32"}

    with pytest.raises(ArtefactCacheError, match="precision"):
        ensure_engine(fused, BuildOptions("fp32", 1), tmp_path / "cache", allow_build=False, out=out)
    built32 = ensure_engine(fused, BuildOptions("fp32", 1), tmp_path / "cache", allow_build=True, out=out)
    assert built32.built and _flags(built32.data) == set()
    assert trt.builds == 2
    assert json.loads(sidecar_path(out).read_text())["key"]["precision"] == "fp32"
    # ... and back: the fp32 engine is not served for fp16 either.
    with pytest.raises(ArtefactCacheError, match="precision"):
        ensure_engine(fused, BuildOptions("fp16", 1), tmp_path / "cache", allow_build=False, out=out)
