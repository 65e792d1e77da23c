"""ONNX Runtime backend: the CPU path, and the reference every other backend is checked against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from seg_perception.backends.base import Backend
from seg_perception.core.errors import BackendError

# Preferred order when the caller names no providers; TensorRT's EP is opt-in (it builds engines at start).
DEFAULT_PROVIDER_ORDER = ("CUDAExecutionProvider", "CPUExecutionProvider")
MAX_BOUND_SHAPES = 8


class OnnxRuntimeBackend(Backend):
    """An onnxruntime InferenceSession over the fused graph, outputs bound to reused buffers."""

    name = "onnxruntime"

    def __init__(
        self,
        model: onnx.ModelProto | bytes | str,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        spin_wait: bool = True,
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
        self._spin_wait = spin_wait
        if not spin_wait:
            # Spin-waiting keeps the intra-op threads hot for back-to-back runs (offline: ~10 % faster per
            # frame here) but burns the cores between a camera's frames that the node's executor and the
            # rest of the robot need: in the node bench it took 145 % CPU instead of 64 % at 30 Hz and
            # dropped 237 instead of 1 frame of 1200 under overload.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self.input_shape = tuple(d if isinstance(d, int) else str(d) for d in inp.shape)
        self.output_names = tuple(o.name for o in self._session.get_outputs())
        # One IO binding with its own output buffers per input shape (batch sizes vary with cameras).
        self._bindings: dict[tuple[int, ...], tuple[Any, dict[str, np.ndarray]]] = {}

    @property
    def providers(self) -> tuple[str, ...]:
        return self._providers

    def describe(self) -> str:
        sleeping = "" if self._spin_wait else "; threads sleep between runs"
        return f"onnxruntime {self._ort.__version__} ({', '.join(self._providers)}{sleeping})"

    def _binding_for(self, batch: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
        """The binding for this input shape; its first use runs unbound once to learn output shapes."""
        key = tuple(batch.shape)
        found = self._bindings.get(key)
        if found is not None:
            return found
        if self._session is None:
            raise BackendError("onnxruntime backend is closed")
        first = self._session.run(list(self.output_names), {self._input_name: batch})
        outputs = {n: np.empty_like(a) for n, a in zip(self.output_names, first, strict=True)}
        binding = self._session.io_binding()
        for name, buf in outputs.items():
            binding.bind_output(name, "cpu", 0, buf.dtype, list(buf.shape), buf.ctypes.data)
        if len(self._bindings) >= MAX_BOUND_SHAPES:
            self._bindings.pop(next(iter(self._bindings)))
        self._bindings[key] = (binding, outputs)
        return binding, outputs

    def infer(self, batch: np.ndarray) -> Mapping[str, np.ndarray]:
        if self._session is None:
            raise BackendError("onnxruntime backend is closed")
        if batch.dtype != np.uint8 or batch.ndim != 4:
            raise BackendError(f"expected a uint8 [N, H, W, 3] batch, got {batch.dtype} {batch.shape}")
        batch = np.ascontiguousarray(batch)
        try:
            binding, outputs = self._binding_for(batch)
            binding.bind_cpu_input(self._input_name, batch)
            self._session.run_with_iobinding(binding)
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"onnxruntime inference failed on a {batch.shape} batch: {exc}") from exc
        return outputs

    def close(self) -> None:
        self._session = None
        self._bindings.clear()
