"""The node's ONNX Runtime threads sleep between frames (spin_wait=False); offline runs keep ONNX Runtime's
default (spinning); the TensorRT backend takes the node's options and ignores the ONNX Runtime-only one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from tensorrt_fixtures import CAMERA, fake_gpu, fused, spec_path  # noqa: F401 - fixtures

import seg_perception.backends as backends
from seg_perception.backends import create_backend

SPINNING = "session.intra_op.allow_spinning"


def _session_options(backend: object) -> object:
    return backend._session.get_session_options()  # type: ignore[attr-defined]


def test_spin_wait_false_turns_onnxruntime_spinning_off_and_the_default_leaves_it_on(fused: onnx.ModelProto) -> None:
    with create_backend("onnxruntime", fused, threads=1, spin_wait=False) as sleeping:
        assert _session_options(sleeping).get_session_config_entry(SPINNING) == "0"  # type: ignore[attr-defined]
        assert sleeping.describe().endswith("; threads sleep between runs)")
    with (
        create_backend("onnxruntime", fused, threads=1) as default,
        pytest.raises(RuntimeError, match="does not have configuration"),  # not set: ONNX Runtime spins
    ):
        _session_options(default).get_session_config_entry(SPINNING)  # type: ignore[attr-defined]


@pytest.mark.usefixtures("fake_gpu")
def test_tensorrt_takes_the_nodes_options_and_ignores_spin_wait(
    fused: onnx.ModelProto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "check_backend", lambda name, **options: None)  # the fake is not findable
    width, height = CAMERA
    with create_backend("tensorrt", fused, engine_cache_dir=str(tmp_path), spin_wait=False) as backend:
        out = backend.infer(np.zeros((1, height, width, 3), np.uint8))
    assert out["labels"].shape == (1, height, width)
