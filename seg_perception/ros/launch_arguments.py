"""What the launch file does with its arguments, as pure functions (no `launch` import) so tests can run them.

Precedence: the params file sets every parameter; a `model`, `backend` or `use_sim_time` launch argument
overrides it only when given (non-empty). The rviz config follows the node's namespace and input topic.
"""

from __future__ import annotations

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
