"""`--ray HOST:PORT` against a Ray cluster with token authentication on (RAY_AUTH_MODE=token, as Ray 2.59+
starts local clusters by default and 2.61+ all clusters): the cluster's token in RAY_AUTH_TOKEN processes the
bag on the cluster; a wrong or missing token is one line and exit 2, nothing written.

One `ray start --head` on 127.0.0.1 with its own HOME (so ~/.ray/auth_token is the test's) and temp dir."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_bags import read_bag

from seg_perception.synthetic.drive_bag import write_synthetic_drive

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
TOKEN = "5eb1c0ffee5eb1c0ffee5eb1c0ffee00"  # Ray accepts any string; `ray get-auth-token --generate` makes one
FRAMES, W, H = 3, 64, 48


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("home")
    temp_dir = tempfile.mkdtemp(prefix="rayauth", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env.update(HOME=str(home), PYTHONPATH=path, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # 127.0.0.1 only
    address = f"127.0.0.1:{_free_port()}"
    head = [str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", address.split(":")[1]]
    head += ["--num-cpus", "1", "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp_dir]
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
    subprocess.run(head, env={**env, **auth}, check=True, capture_output=True, timeout=180)
    try:
        yield address, env
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env={**env, **auth}, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _process(bag: Path, out: Path, spec: Path, address: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "seg_perception.cli", "process", str(bag), str(out), "--ray", address]
    cmd += ["--model", str(spec), "--backend", "onnxruntime"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _errors(stderr: str) -> list[str]:
    """Our error lines. Before them Ray logs its own connection attempt (`... INFO worker.py ... Connecting`)
    and its C++ client's retries (`[... W ...] gcs_client.cc ... InvalidAuthToken`), which we cannot silence
    without hiding Ray's warnings for the whole run."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_the_clusters_token_works_and_a_wrong_or_missing_one_is_one_line(
    cluster: tuple[str, dict[str, str]], spec_path: Path, tmp_path: Path
) -> None:
    address, env = cluster
    bag = write_synthetic_drive(tmp_path / "in" / "drive", FRAMES, width=W, height=H, storage="mcap").path

    right = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
    done = _process(bag, tmp_path / "ok", spec_path, address, right)
    assert done.returncode == 0, done.stderr[-3000:]
    labels = [m for topic, ms in read_bag(tmp_path / "ok").items() if topic.endswith("/labels") for m in ms]
    assert len(labels) == FRAMES, sorted(read_bag(tmp_path / "ok"))

    wrong = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}
    for name, client_env, sent in (
        ("wrong", wrong, "the token in RAY_AUTH_TOKEN was refused"),
        ("missing", env, "RAY_AUTH_MODE=unset, so no token was sent"),
    ):
        done = _process(bag, tmp_path / name, spec_path, address, client_env)
        assert done.returncode == 2, done.stderr[-3000:]
        assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("error:")
        assert _errors(done.stderr) == [
            f"error: --ray {address}: the Ray cluster requires token authentication and {sent}: set "
            "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token "
            "(`ray get-auth-token` on its head node)"
        ], done.stderr[-3000:]
        assert not (tmp_path / name).exists()
