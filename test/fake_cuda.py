"""A stand-in for `pycuda.driver` that keeps CUDA's rules instead of ignoring them.

Device memory is numpy bytes behind fake 256-byte-aligned addresses; every access is bounds-checked
against a live allocation (a real GPU would corrupt memory or fault). Async copies and engine runs are
queued on their stream and only happen at `Stream.synchronize()`, so results read before the sync are
stale, as on a GPU. Async copies need page-locked host memory (`pagelocked_empty`), as pycuda documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

ALIGNMENT = 256


class FakeCudaError(Exception):
    """pycuda.driver.Error."""


class DeviceAllocation:
    """pycuda's DeviceAllocation: `int()` is the device address; `free()` releases it (once)."""

    def __init__(self, driver: FakeDriver, nbytes: int) -> None:
        if nbytes < 1:
            raise FakeCudaError(f"cuMemAlloc failed: invalid argument (nbytes={nbytes})")
        self.driver = driver
        self.address = driver.next_address
        driver.next_address += (nbytes + 2 * ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT  # a gap between blocks
        driver.memory[self.address] = np.zeros(nbytes, np.uint8)

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        if self.address not in self.driver.memory:
            raise FakeCudaError(f"cuMemFree failed: {self.address:#x} was already freed")
        del self.driver.memory[self.address]
        self.driver.freed += 1


class FakeDriver:
    """pycuda.driver: init, Device, Context, Stream, mem_alloc, pagelocked_empty, async memcpy."""

    Error = FakeCudaError

    def __init__(self) -> None:
        self.memory: dict[int, np.ndarray] = {}
        self.next_address = 0x10000
        self.pinned: list[np.ndarray] = []
        self.streams: dict[int, Any] = {}
        self.syncs = self.freed = self.detached = self.pushed = 0
        driver = self

        class Context:
            def push(self) -> None:
                driver.pushed += 1

            def detach(self) -> None:
                driver.detached += 1

            @staticmethod
            def pop() -> None:
                if driver.pushed < 1:
                    raise FakeCudaError("cuCtxPopCurrent failed: no context is current")
                driver.pushed -= 1

        class Device:
            def __init__(self, index: int) -> None:
                if index != 0:
                    raise FakeCudaError(f"cuDeviceGet failed: invalid device ordinal {index}")

            @staticmethod
            def count() -> int:
                return 1

            def retain_primary_context(self) -> Context:
                return Context()

            def name(self) -> str:
                return "Fake Orin"

            def compute_capability(self) -> tuple[int, int]:
                return (8, 7)

        class Stream:
            def __init__(self) -> None:
                self.handle = 0x5000 + len(driver.streams)  # never 0, the legacy default stream
                self.queue: list[Callable[[], None]] = []
                driver.streams[self.handle] = self

            def synchronize(self) -> None:
                driver.syncs += 1
                queued, self.queue = self.queue, []
                for work in queued:
                    work()

        self.Context, self.Device, self.Stream = Context, Device, Stream

    # ------------------------------------------------------------------ the pycuda.driver API

    def init(self) -> None:
        pass

    def mem_alloc(self, nbytes: int) -> DeviceAllocation:
        return DeviceAllocation(self, int(nbytes))

    def pagelocked_empty(self, shape: int | tuple[int, ...], dtype: Any) -> np.ndarray:
        array = np.empty(shape, dtype)
        array.reshape(-1).view(np.uint8)[:] = 0xAB
        self.pinned.append(array)  # garbage contents, like real pinned memory
        return array

    def memcpy_htod_async(self, dest: object, src: np.ndarray, stream: Any = None) -> None:
        self._check_pinned(src, "memcpy_htod_async source")
        device = self.device_bytes(int(dest), src.nbytes)  # type: ignore[call-overload]
        self._stream(stream).queue.append(lambda: device.__setitem__(slice(None), src.reshape(-1).view(np.uint8)))

    def memcpy_dtoh_async(self, dest: np.ndarray, src: object, stream: Any = None) -> None:
        self._check_pinned(dest, "memcpy_dtoh_async destination")
        device = self.device_bytes(int(src), dest.nbytes)  # type: ignore[call-overload]
        host = dest.reshape(-1).view(np.uint8)  # a view: raises if dest is not contiguous
        self._stream(stream).queue.append(lambda: host.__setitem__(slice(None), device))

    # ------------------------------------------------------------------ what the fake TensorRT uses

    def device_bytes(self, address: int, nbytes: int) -> np.ndarray:
        """The `nbytes` at `address`, inside one live allocation, or a CUDA error (an illegal access)."""
        for start, block in self.memory.items():
            if start <= address < start + block.size:
                offset = address - start
                if offset + nbytes > block.size:
                    raise FakeCudaError(
                        f"an illegal memory access: {nbytes} bytes at {address:#x} overrun a {block.size}-byte "
                        f"allocation by {offset + nbytes - block.size}"
                    )
                return block[offset : offset + nbytes]
        raise FakeCudaError(f"an illegal memory access: {address:#x} is not allocated (or was freed)")

    def _check_pinned(self, array: np.ndarray, what: str) -> None:
        if not any(np.may_share_memory(array, p) for p in self.pinned):
            raise FakeCudaError(f"{what} is not page-locked memory (pycuda needs pagelocked_empty for async copies)")

    def _stream(self, stream: Any) -> Any:
        if stream is None or stream.handle not in self.streams:
            raise FakeCudaError("async copy without a stream of this context")
        return stream
