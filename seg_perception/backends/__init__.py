"""Inference backends. Optional dependencies (onnxruntime, tensorrt, pycuda) are imported lazily."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import onnx

from seg_perception.backends.base import Backend
from seg_perception.core.errors import BackendError

BACKEND_NAMES = ("auto", "onnxruntime", "tensorrt")
TENSORRT_INSTALL_HINT = (
    "on Jetson install JetPack's python3-libnvinfer (sudo apt install nvidia-tensorrt) and pycuda; "
    "on x86 pip install tensorrt pycuda (NVIDIA driver and CUDA required)"
)


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


def engine_cache_path(path: str) -> Path:
    """The engine cache directory with ~ expanded, created if needed; refused when not writable."""
    directory = Path(os.path.expanduser(path))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendError(f"engine cache directory {directory} cannot be created: {exc.strerror or exc}") from exc
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BackendError(f"engine cache directory {directory} is not writable")
    return directory


def check_backend(name: str, **options: object) -> None:
    """Fail fast, before any frame arrives, when the resolved backend cannot run here."""
    if name == "tensorrt":
        engine_cache_path(str(options.get("engine_cache_dir", "~/.cache/seg_perception/engines")))
        usable, why = tensorrt_usable()
        if not usable:
            raise BackendError(f"TensorRT was not found ({why}): {TENSORRT_INSTALL_HINT}; or use backend onnxruntime")


def create_backend(name: str, fused: onnx.ModelProto, threads: int = 0, **options: object) -> Backend:
    """Build a backend over a fused graph. `name` must already be resolved (not 'auto').

    `spin_wait=False` (the node) lets ONNX Runtime's worker threads sleep between runs instead of
    spin-waiting for the next one; TensorRT has no such threads and ignores it."""
    spin_wait = bool(options.pop("spin_wait", True))
    if name == "onnxruntime":
        from seg_perception.backends.onnxruntime_backend import OnnxRuntimeBackend

        providers = options.get("providers")
        return OnnxRuntimeBackend(
            fused, providers=providers if isinstance(providers, list) else None, threads=threads, spin_wait=spin_wait
        )
    if name == "tensorrt":
        check_backend(name, **options)
        from seg_perception.backends.tensorrt_backend import create_tensorrt_backend  # type: ignore[import-not-found]

        return create_tensorrt_backend(fused, **options)  # type: ignore[no-any-return]
    raise BackendError(f"backend {name!r} is not one of onnxruntime, tensorrt")


__all__ = [
    "BACKEND_NAMES",
    "TENSORRT_INSTALL_HINT",
    "Backend",
    "check_backend",
    "create_backend",
    "engine_cache_path",
    "resolve_backend_name",
    "tensorrt_usable",
]
