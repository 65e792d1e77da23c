"""ONNX Runtime backend: the CPU path, and the reference every other backend is checked against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from seg_perception.backends.base import Backend
from seg_perception.core.errors import BackendError

# Preferred order when the caller names no providers; TensorRT's EP is opt-in (it builds engines at start).
DEFAULT_PROVIDER_ORDER = ("CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend(Backend):
    """An onnxruntime InferenceSession over the fused graph, outputs bound to reused buffers."""

    name = "onnxruntime"

    def __init__(
        self, model: onnx.ModelProto | bytes | str, providers: Sequence[str] | None = None, threads: int = 0
    ) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in DEFAULT_PROVIDER_ORDER if p in available]
        missing = [p for p in providers if p not in available]
        if missing or not providers:
            raise BackendError(
                f"onnxruntime execution providers {missing or list(providers)} are not available; "
                f"this onnxruntime build offers {available}"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        try:
            self._session: ort.InferenceSession | None = ort.InferenceSession(
                source, sess_options=options, providers=list(providers)
            )
        except Exception as exc:
            raise BackendError(f"onnxruntime could not load the fused graph: {exc}") from exc
        self._ort = ort
        self._providers = tuple(self._session.get_providers())
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self._input_shape = tuple(d if isinstance(d, int) else str(d) for d in inp.shape)
        self._output_names = tuple(o.name for o in self._session.get_outputs())
        self._binding = self._session.io_binding()
        self._bound_shape: tuple[int, ...] | None = None
        self._outputs: dict[str, np.ndarray] = {}

    @property
    def input_shape(self) -> tuple[int | str, ...]:
        return self._input_shape

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    @property
    def providers(self) -> tuple[str, ...]:
        return self._providers

    def describe(self) -> str:
        return f"onnxruntime {self._ort.__version__} ({', '.join(self._providers)})"

    def _bind_outputs(self, batch: np.ndarray) -> None:
        """Run once unbound to learn output shapes, then bind reused buffers for this input shape."""
        if self._session is None:
            raise BackendError("onnxruntime backend is closed")
        first = self._session.run(list(self._output_names), {self._input_name: batch})
        self._outputs = {n: np.empty_like(a) for n, a in zip(self._output_names, first, strict=True)}
        self._binding.clear_binding_outputs()
        for name, buf in self._outputs.items():
            self._binding.bind_output(name, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
        self._bound_shape = tuple(batch.shape)

    def infer(self, batch: np.ndarray) -> Mapping[str, np.ndarray]:
        if self._session is None:
            raise BackendError("onnxruntime backend is closed")
        if batch.dtype != np.uint8 or batch.ndim != 4:
            raise BackendError(f"expected a uint8 [N, H, W, 3] batch, got {batch.dtype} {batch.shape}")
        batch = np.ascontiguousarray(batch)
        try:
            if self._bound_shape != tuple(batch.shape):
                self._bind_outputs(batch)
            self._binding.bind_cpu_input(self._input_name, batch)
            self._session.run_with_iobinding(self._binding)
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"onnxruntime inference failed on a {batch.shape} batch: {exc}") from exc
        return self._outputs

    def close(self) -> None:
        self._session = None
        self._outputs = {}
        self._bound_shape = None
