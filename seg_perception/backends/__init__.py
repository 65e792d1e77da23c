"""Inference backends. Optional dependencies (onnxruntime, tensorrt, pycuda) are imported lazily."""

from __future__ import annotations

import importlib.util

import onnx

from seg_perception.backends.base import Backend
from seg_perception.core.errors import BackendError

BACKEND_NAMES = ("auto", "onnxruntime", "tensorrt")


def tensorrt_usable() -> tuple[bool, str]:
    """Whether the TensorRT backend can run here, and why (for the log line that explains `auto`)."""
    for module in ("tensorrt", "pycuda"):
        if importlib.util.find_spec(module) is None:
            return False, f"python module '{module}' is not installed"
    try:
        import pycuda.driver as cuda  # type: ignore[import-not-found]

        cuda.init()
        if cuda.Device.count() < 1:
            return False, "no CUDA device found"
    except Exception as exc:  # noqa: BLE001 - any CUDA failure means "not usable"
        return False, f"CUDA is not usable ({exc})"
    return True, "tensorrt and a CUDA device are present"


def resolve_backend_name(name: str) -> tuple[str, str]:
    """Map 'auto' to a concrete backend; returns (name, reason)."""
    if name not in BACKEND_NAMES:
        raise BackendError(f"backend {name!r} is not one of {', '.join(BACKEND_NAMES)}")
    if name != "auto":
        return name, "requested explicitly"
    usable, why = tensorrt_usable()
    return ("tensorrt", why) if usable else ("onnxruntime", f"TensorRT not chosen: {why}")


def create_backend(name: str, fused: onnx.ModelProto, threads: int = 0, **options: object) -> Backend:
    """Build a backend over a fused graph. `name` must already be resolved (not 'auto')."""
    if name == "onnxruntime":
        from seg_perception.backends.onnxruntime_backend import OnnxRuntimeBackend

        providers = options.get("providers")
        return OnnxRuntimeBackend(fused, providers=providers if isinstance(providers, list) else None, threads=threads)
    if name == "tensorrt":
        usable, why = tensorrt_usable()
        if not usable:
            raise BackendError(f"the tensorrt backend cannot run here: {why}; use backend onnxruntime")
        from seg_perception.backends.tensorrt_backend import create_tensorrt_backend  # type: ignore[import-not-found]

        return create_tensorrt_backend(fused, **options)  # type: ignore[no-any-return]
    raise BackendError(f"backend {name!r} is not one of onnxruntime, tensorrt")


__all__ = ["BACKEND_NAMES", "Backend", "create_backend", "resolve_backend_name", "tensorrt_usable"]
