"""Ray as an optional dependency: lazy import, one-line install hint, and a cluster connection we clean up.

`--ray` takes no value (start a private local Ray), `auto` (join the cluster this machine belongs to, as
`ray start` set it up) or `ray://HOST:PORT` (Ray Client). Only a Ray we started is shut down again.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from seg_perception.cli_args import number
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


@dataclass(frozen=True)
class ActorPool:
    """How many Ray actors (None: as many as fit) and what each one asks for."""

    workers: int | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    @property
    def threads(self) -> int:
        """Inference threads of one actor: its CPUs, so that actors sharing a node do not oversubscribe it."""
        return max(1, int(self.num_cpus))


def add_actor_pool_arguments(parser: argparse.ArgumentParser, actor: str) -> None:
    """`--workers`, `--num-cpus`, `--num-gpus`: the actor pool of a `--ray` run; `actor` says what one holds."""
    parser.add_argument(
        "--workers",
        type=number(int, 1),
        default=None,
        metavar="N",
        help=f"--ray: actors, each with {actor} (default: as many as the cluster's CPUs, or GPUs with "
        "--num-gpus, hold)",
    )
    parser.add_argument(
        "--num-cpus",
        type=number(float, 0.0, strict=True),
        default=None,
        metavar="C",
        help="--ray: CPUs per actor, also its inference threads unless --threads says otherwise (default 1)",
    )
    parser.add_argument(
        "--num-gpus",
        type=number(float, 0.0),
        default=None,
        metavar="G",
        help="--ray: GPUs per actor (default 0; 1 runs one actor per GPU)",
    )


def actor_pool(args: argparse.Namespace, command: str, more: Mapping[str, object] | None = None) -> ActorPool | None:
    """The pool `args` ask for, or None without --ray, where the pool options (and `more`) are refused."""
    given = {"--workers": args.workers, "--num-cpus": args.num_cpus, "--num-gpus": args.num_gpus, **(more or {})}
    if args.ray is None:
        named = [name for name, value in given.items() if value is not None]
        if named:
            verb = "applies" if len(named) == 1 else "apply"
            raise SegPerceptionError(f"{', '.join(named)} only {verb} with --ray ({command} on a Ray cluster)")
        return None
    return ActorPool(
        args.workers, 1.0 if args.num_cpus is None else args.num_cpus, 0.0 if args.num_gpus is None else args.num_gpus
    )


def actors_that_fit(pool: ActorPool, resources: Mapping[str, float]) -> int:
    """`pool.workers`, or as many actors as the cluster's CPUs and GPUs hold.

    A pool the cluster cannot hold is refused here rather than left waiting for resources that never come
    (on an autoscaling cluster, start its nodes first).
    """
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    fits = int(cpus // pool.num_cpus)
    if pool.num_gpus > 0:
        fits = min(fits, int(gpus // pool.num_gpus))
    if fits < 1 or (pool.workers is not None and pool.workers > fits):
        asked = f"--workers {pool.workers}" if pool.workers is not None else "one actor"
        raise SegPerceptionError(
            f"{asked} with --num-cpus {pool.num_cpus:g} --num-gpus {pool.num_gpus:g}: the Ray cluster has "
            f"{cpus:g} CPUs and {gpus:g} GPUs in all, room for {fits} such actors"
        )
    return pool.workers or fits


LOOPBACK = "127.0.0.1"
# On Linux, Ray replaces a node address of 127.0.0.1 by the machine's routable address (services.
# resolve_ip_for_localhost) unless its single-machine mode is on, the default on macOS and Windows. With it,
# the GCS, raylet, workers and their gRPC servers bind and connect to 127.0.0.1 only.
SINGLE_MACHINE_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def keep_local_ray_on_loopback(environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """Make a Ray started by this process bind to 127.0.0.1: the environment its processes inherit, Ray's
    already-read constant if Ray is imported, and the `ray.init` options to pass."""
    env = os.environ if environ is None else environ
    env[SINGLE_MACHINE_VARIABLE] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and environ is None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]  # read at import; services per call
    return {"_node_ip_address": LOOPBACK}


# Ray's token authentication (on by default for clusters `ray.init()` starts since Ray 2.59): what a client reads.
AUTH_MODE_VARIABLE = "RAY_AUTH_MODE"
AUTH_TOKEN_VARIABLE = "RAY_AUTH_TOKEN"
AUTH_TOKEN_PATH_VARIABLE = "RAY_AUTH_TOKEN_PATH"
# What the GCS answers a client whose token is missing or wrong; Ray's ConnectionError keeps it in its cause.
AUTH_REFUSED_MARKS = ("InvalidAuthToken", "Unauthenticated")


def refused_authentication(exc: BaseException) -> bool:
    """Whether `ray.init` failed on token authentication: Ray's AuthenticationError (auth on here, no token),
    or a ConnectionError whose cause is the GCS refusing the token (a wrong one, or none sent)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short; a bound guards against a cycle
        if seen is None:
            return False
        if type(seen).__name__ == "AuthenticationError" or any(m in str(seen) for m in AUTH_REFUSED_MARKS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def auth_hint(environ: Mapping[str, str]) -> str:
    """One line: the cluster refused this client's token, what the client sent, and Ray's settings to fix it."""
    mode = environ.get(AUTH_MODE_VARIABLE, "")
    if mode.lower() != "token":
        sent = f"{AUTH_MODE_VARIABLE}={mode or 'unset'}, so no token was sent"
    elif environ.get(AUTH_TOKEN_VARIABLE):
        sent = f"the token in {AUTH_TOKEN_VARIABLE} was refused"
    elif environ.get(AUTH_TOKEN_PATH_VARIABLE):
        sent = f"the token in {AUTH_TOKEN_PATH_VARIABLE}={environ[AUTH_TOKEN_PATH_VARIABLE]} was refused or is missing"
    else:
        sent = "the token in ~/.ray/auth_token was refused or is missing"
    return (
        f"the Ray cluster requires token authentication and {sent}: set {AUTH_MODE_VARIABLE}=token and "
        f"{AUTH_TOKEN_VARIABLE} (or {AUTH_TOKEN_PATH_VARIABLE}) to the cluster's token (`ray get-auth-token` "
        "on its head node)"
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
    if address == LOCAL:  # a Ray we start on this machine listens and connects on loopback only
        options.update(num_cpus=num_cpus, **keep_local_ray_on_loopback())
    else:
        options["address"] = address
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:  # RayError: auth
        if refused_authentication(exc):
            raise RayUnavailableError(f"--ray {address}: {auth_hint(os.environ)}") from None
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
