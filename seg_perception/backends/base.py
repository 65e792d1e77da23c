"""The one backend interface: a compiled fused graph that maps a uint8 batch to named outputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType

import numpy as np


class Backend(ABC):
    """Runs a fused graph. Outputs may live in reused buffers: callers copy what they keep."""

    name: str = "backend"
    input_shape: tuple[int | str, ...]  # declared input shape; strings are dynamic dimensions
    output_names: tuple[str, ...]  # graph outputs, in graph order

    @abstractmethod
    def infer(self, batch: np.ndarray) -> Mapping[str, np.ndarray]:
        """Run one batch (uint8 [N, H, W, 3]) and return the outputs by name."""

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        return self.name

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need not override it
        """Release resources; safe to call more than once."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
