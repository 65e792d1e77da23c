"""The launch file's pure helpers, word for word: the booleans it accepts, the namespace it resolves, the
overrides it passes, the Fast DDS profile default and the rviz config it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seg_perception.ros import launch_arguments
from seg_perception.ros.launch_arguments import (
    FALSE_WORDS,
    PROFILE_VARIABLE,
    TRUE_WORDS,
    absolute_namespace,
    default_fastdds_profile,
    parameter_overrides,
    rviz_config,
    wants_rviz,
)


@pytest.mark.parametrize("word", ["true", "True", "1"])
def test_true_words(word: str) -> None:
    assert wants_rviz(word) is True
    assert parameter_overrides("", "", word) == {"use_sim_time": True}


@pytest.mark.parametrize("word", ["false", "False", "0"])
def test_false_words(word: str) -> None:
    assert wants_rviz(word) is False
    assert parameter_overrides("", "", word) == {"use_sim_time": False}


@pytest.mark.parametrize("word", ["TRUE", "yes", "", " true", "2", "off"])
def test_anything_else_is_refused_naming_the_argument(word: str) -> None:
    with pytest.raises(ValueError) as err:
        wants_rviz(word)
    assert str(err.value) == f"launch argument rviz:={word!r} must be true or false"
    assert TRUE_WORDS == ("true", "True", "1") and FALSE_WORDS == ("false", "False", "0")


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("", ""),
        ("/", ""),
        ("camera", "/camera"),
        ("/camera/front/", "/camera/front"),
        ("//a//", "/a"),
        ("XY/", "/XY"),
    ],
)
def test_absolute_namespace(given: str, resolved: str) -> None:
    assert absolute_namespace(given) == resolved


def test_the_fastdds_profile_default_is_the_environment_then_the_shipped_file() -> None:
    assert PROFILE_VARIABLE == "FASTDDS_DEFAULT_PROFILES_FILE"
    assert default_fastdds_profile({PROFILE_VARIABLE: "/mine.xml"}, "/shipped.xml") == "/mine.xml"
    assert default_fastdds_profile({PROFILE_VARIABLE: ""}, "/shipped.xml") == "/shipped.xml"
    assert default_fastdds_profile({"OTHER": "/x.xml"}, "/shipped.xml") == "/shipped.xml"


TEMPLATE = """\
Visualization Manager:
  Displays:
    - Name: Camera
      Topic:
        Value: /camera/image_raw
    - Name: Labels
      Topic:
        Value: /old/segmentation/overlay
      Update Topic:
        Value: /old/segmentation/overlay/updates
    - Name: Grid
      Offset: [0, 1]
    - Name: Legend
      Topic:
        Depth: 1
      Update Topic:
        Value: /old/segmentation/legend/segmentation/extra
Panels: []
"""


def test_rviz_config_points_every_display_at_the_namespace_and_the_camera() -> None:
    text = rviz_config(TEMPLATE, "/front/", "/cams/front/image")
    displays = yaml.safe_load(text)["Visualization Manager"]["Displays"]
    assert displays == [
        {"Name": "Camera", "Topic": {"Value": "/cams/front/image"}},
        {
            "Name": "Labels",
            "Topic": {"Value": "/front/segmentation/overlay"},
            "Update Topic": {"Value": "/front/segmentation/overlay/updates"},
        },
        {"Name": "Grid", "Offset": [0, 1]},
        # A Topic without a Value is left alone, and the Update Topic after it is still moved (everything
        # after the first /segmentation/ is the output's name).
        {
            "Name": "Legend",
            "Topic": {"Depth": 1},
            "Update Topic": {"Value": "/front/segmentation/legend/segmentation/extra"},
        },
    ]
    # Block style throughout and the keys in the template's order, as the shipped config is written.
    assert text.startswith("Visualization Manager:\n") and text.endswith("Panels: []\n")
    assert "  Offset:\n    - 0\n    - 1\n" in text
    no_namespace = yaml.safe_load(rviz_config(TEMPLATE, "", "/image"))["Visualization Manager"]["Displays"]
    assert no_namespace[1]["Topic"] == {"Value": "/segmentation/overlay"}


def test_overrides_carry_the_given_values_under_the_node_parameter_names() -> None:
    assert parameter_overrides("/m/spec.yaml", "", "") == {"model": "/m/spec.yaml"}
    assert parameter_overrides("", "tensorrt", "") == {"backend": "tensorrt"}
    assert parameter_overrides("a.yaml", "onnxruntime", "0") == {
        "model": "a.yaml",
        "backend": "onnxruntime",
        "use_sim_time": False,
    }
    with pytest.raises(ValueError) as err:
        parameter_overrides("", "", "yes")
    assert str(err.value) == "launch argument use_sim_time:='yes' must be true or false"


def test_an_unreadable_params_file_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("{}\n")
    # As root every file is readable: the check is os.access's answer, so ask it for a non-root user's.
    monkeypatch.setattr(launch_arguments.os, "access", lambda p, mode: False)
    with pytest.raises(ValueError) as err:
        launch_arguments.checked_params_file(str(path))
    assert str(err.value) == f"launch argument params_file:={str(path)!r}: not readable"
