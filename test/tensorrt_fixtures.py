"""Fixtures of the TensorRT backend tests: a tiny model, its fused graph, and the contract-keeping fake
TensorRT/pycuda (test/fake_tensorrt.py, test/fake_cuda.py) installed in sys.modules for one test."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from fake_cuda import FakeDriver
from fake_tensorrt import FakeTensorRT
from tiny_models import conv_logits_model, spec_dict, write_spec

from seg_perception.core.graph_compiler import compile_fused_graph
from seg_perception.core.spec_loader import load_model_spec

CAMERA = (160, 120)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("model")
    conv_logits_model(d / "m.onnx", 4, 48, 64, seed=0)
    return write_spec(d / "m.yaml", spec_dict("m.onnx", ["road", "car", "sky", "person"]))


@pytest.fixture(scope="module")
def fused(spec_path: Path) -> onnx.ModelProto:
    return compile_fused_graph(load_model_spec(spec_path), *CAMERA)


@pytest.fixture()
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeTensorRT, FakeDriver]]:
    from seg_perception.backends import engine_builder

    driver = FakeDriver()
    trt = FakeTensorRT(driver)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = driver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    monkeypatch.setattr(engine_builder, "_LOGGER", None)
    yield trt, driver
    engine_builder._LOGGER = None
