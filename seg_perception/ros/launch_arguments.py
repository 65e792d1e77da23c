"""What the launch file does with its arguments, as pure functions (no `launch` import) so tests can run them.

Precedence: the params file sets every parameter; a `model`, `backend` or `use_sim_time` launch argument
overrides it only when given (non-empty). The rviz config follows the node's namespace and input topic.
What is refused before anything starts (a missing params file, rviz without rviz2) and what ends the launch
(the node exiting) are decided here too; each refusal is a ValueError whose text is the one line shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

TRUE_WORDS = ("true", "True", "1")
FALSE_WORDS = ("false", "False", "0")


def _boolean(name: str, text: str) -> bool:
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"launch argument {name}:={text!r} must be true or false")


def parameter_overrides(model: str, backend: str, use_sim_time: str) -> dict[str, str | bool]:
    """Node parameters the launch arguments override: only those given; '' leaves the params file's value."""
    overrides: dict[str, str | bool] = {}
    if model:
        overrides["model"] = model
    if backend:
        overrides["backend"] = backend
    if use_sim_time:
        overrides["use_sim_time"] = _boolean("use_sim_time", use_sim_time)
    return overrides


def wants_rviz(text: str) -> bool:
    """The `rviz` launch argument."""
    return _boolean("rviz", text)


def absolute_namespace(namespace: str) -> str:
    """'camera' or '/camera/front/' -> '/camera' or '/camera/front' (how the node's topics resolve)."""
    stripped = namespace.strip("/")
    return f"/{stripped}" if stripped else ""


def rviz_config(template: str, namespace: str, image_topic: str) -> str:
    """The shipped rviz config with every display pointed at `namespace`'s outputs and the camera at `image_topic`.

    Displays of `<any>/segmentation/<output>` move to `<namespace>/segmentation/<output>`; the one display of a
    topic outside segmentation/ is the camera input.
    """
    config = yaml.safe_load(template)
    prefix = absolute_namespace(namespace)
    for display in config["Visualization Manager"]["Displays"]:
        for key in ("Topic", "Update Topic"):
            topic: dict[str, Any] | None = display.get(key)
            if not topic or "Value" not in topic:
                continue
            current = str(topic["Value"])
            _, found, output = current.partition("/segmentation/")
            topic["Value"] = f"{prefix}/segmentation/{output}" if found else image_topic
    text: str = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return text


PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"


def default_fastdds_profile(environ: Mapping[str, str], shipped: str) -> str:
    """The `fastdds_profile` default, as a plain path so `--show-args` shows what will be used: the variable
    when the environment sets it (as for `seg-perception run`), else the shipped large-data profile."""
    return environ.get(PROFILE_VARIABLE) or shipped


def checked_params_file(path: str) -> str:
    """The `params_file` argument, refused in one line when it is not a readable file (launch_ros would only
    warn, and the node would run on its defaults)."""
    if not os.path.isfile(path):
        raise ValueError(f"launch argument params_file:={path!r}: no such file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"launch argument params_file:={path!r}: not readable")
    return path


def rviz_to_start(wanted: bool, rviz_installed: bool) -> bool:
    """Whether to start rviz2; wanted but not installed is refused before anything starts (a launch that fails
    after the node has started leaves the node running without its launch)."""
    if wanted and not rviz_installed:
        raise ValueError(
            "launch argument rviz:=true, but package 'rviz2' is not installed (install ros-<distro>-rviz2)"
        )
    return wanted


def node_exit_error(returncode: int | None) -> str | None:
    """What ends the launch when the node exits: None for a clean exit (status 0: the launch shuts down with
    status 0), else the line the launch fails with (ros2 launch then exits 1: LaunchService.run returns 1 for
    any exception raised in the launch, and never passes a process's own status on)."""
    if returncode == 0:
        return None
    if returncode == 2:
        why = "a configuration error, named in its 'cannot start' line above"
    elif returncode is not None and returncode < 0:
        why = f"killed by signal {-returncode}"
    else:
        why = "see its log above"
    return f"seg_perception_node exited with status {returncode} ({why})"
