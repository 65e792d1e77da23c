"""Ray as an optional dependency: lazy import, one-line install hint, and a cluster connection we clean up.

`--ray` takes no value (start a private local Ray), `auto` (join the cluster this machine belongs to, as
`ray start` set it up) or `ray://HOST:PORT` (Ray Client). Only a Ray we started is shut down again.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from seg_perception.core.errors import SegPerceptionError

LOG = logging.getLogger("seg_perception")
RAY_INSTALL = "pip install 'ray[data]>=2.40'"
LOCAL = "local"  # `--ray` given without an address


class RayUnavailableError(SegPerceptionError):
    """Ray is not installed, or the cluster could not be reached."""


def import_ray() -> ModuleType:
    """The `ray` module, or one clear line saying how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise RayUnavailableError(f"--ray needs Ray, which is not installed ({exc}): {RAY_INSTALL}") from None


def ray_address(text: str) -> str:
    """argparse type of `--ray ADDRESS`: `auto`, `local`, `ray://host:port` or `host:port`."""
    value = text.strip()
    if value in ("auto", LOCAL) or value.startswith("ray://") or (":" in value and value.rsplit(":", 1)[1].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"--ray {text!r}: expected auto, ray://HOST:PORT or HOST:PORT (or no value)")


def add_ray_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """`--ray [ADDRESS]` on a subcommand; the value is None without the flag, LOCAL for a bare `--ray`."""
    parser.add_argument(
        "--ray",
        type=ray_address,
        nargs="?",
        const=LOCAL,
        default=None,
        metavar="ADDRESS",
        help=f"{what} on Ray: no value starts a local Ray, `auto` joins this machine's cluster, "
        "ray://HOST:PORT connects through Ray Client (needs: " + RAY_INSTALL + ")",
    )


@contextlib.contextmanager
def ray_session(address: str, num_cpus: int | None = None, **init_kwargs: Any) -> Iterator[ModuleType]:
    """Connect to (or start) Ray for the duration of the block; shut down only what we started.

    An already initialised Ray (a test's or a notebook's) is used as it is and left running.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, **init_kwargs}
    if address == LOCAL:
        options["num_cpus"] = num_cpus
    else:
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:  # RayError: auth
        raise RayUnavailableError(f"--ray {address}: could not start or reach Ray: {exc}") from None
    LOG.info("Ray %s: %s", ray.__version__, _describe_resources(ray))
    try:
        yield ray
    finally:
        ray.shutdown()


def _describe_resources(ray: ModuleType) -> str:
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return f"{nodes} node{'s' if nodes != 1 else ''}, {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"
