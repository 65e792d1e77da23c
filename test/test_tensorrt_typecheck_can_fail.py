"""`make typecheck` really checks TensorRT calls: a call that does not exist fails, the real ones pass.

mypy runs with the repository's setup.cfg, which points `mypy_path` at the patched tensorrt-stubs
(made by the Makefile's venv step with .ci/patch_tensorrt_stubs.py). If TensorRT were silently `Any`
(stubs missing, or an ignore on tensorrt), the misspelt call below would pass and this test would fail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / ".venv" / "tensorrt-stubs" / "tensorrt"

REAL_CALLS = """
import tensorrt as trt


def run(engine_data: bytes, stream_handle: int, address: int) -> bool:
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(engine_data)
    context = engine.create_execution_context()
    name = engine.get_tensor_name(0)
    if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
        low, opt, high = engine.get_tensor_profile_shape(name, 0)
        context.set_input_shape(name, trt.Dims([high[0], 120, 160, 3]))
    context.set_tensor_address(name, address)
    return context.execute_async_v3(stream_handle)


def build(onnx_bytes: bytes) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    parser.parse(onnx_bytes)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_timing_cache(config.create_timing_cache(b""), False)
    return bytes(builder.build_serialized_network(network, config))
"""

MISSPELT_CALL = """
import tensorrt as trt


def run(context: trt.IExecutionContext, stream_handle: int) -> bool:
    return context.execute_async_v9(stream_handle)
"""


def test_mypy_rejects_a_tensorrt_call_that_does_not_exist_and_accepts_real_ones(tmp_path: Path) -> None:
    assert STUBS.is_dir(), f"{STUBS} is missing: run `rm .venv/.installed-* && make venv`"
    good, bad = tmp_path / "real_calls.py", tmp_path / "misspelt_call.py"
    good.write_text(REAL_CALLS)
    bad.write_text(MISSPELT_CALL)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "setup.cfg"), str(good), str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 1, report
    assert '"IExecutionContext" has no attribute "execute_async_v9"' in report, report
    assert "real_calls.py" not in report, report
    assert "Found 1 error in 1 file" in report, report
