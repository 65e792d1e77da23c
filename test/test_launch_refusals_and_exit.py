"""What the launch file refuses before anything starts, and how the launch ends when the node exits.

`launch` is not on the package registry, so the decisions live in pure functions
(seg_perception.ros.launch_arguments) tested here, and the launch file is read as a syntax tree to check it
calls them where it must (before the node is created, before the rviz config is written). The same decisions
were checked with the genuine `ros2 launch` by tools/verify_real_launch.py (docs/launch.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from seg_perception.ros.launch_arguments import (
    PROFILE_VARIABLE,
    checked_params_file,
    default_fastdds_profile,
    node_exit_error,
    rviz_to_start,
)

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "seg_perception.launch.py"
SHIPPED_PROFILE = "/opt/ws/install/seg_perception/share/seg_perception/config/fastdds_large_data.xml"


# --- params_file ------------------------------------------------------------------------------------------------


def test_an_existing_params_file_is_used_as_given() -> None:
    shipped = ROOT / "config" / "seg_perception.yaml"
    assert checked_params_file(str(shipped)) == str(shipped)


def test_a_missing_params_file_is_refused_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "my_params.yaml"
    with pytest.raises(ValueError) as caught:
        checked_params_file(str(missing))
    assert str(caught.value) == f"launch argument params_file:='{missing}': no such file"


def test_a_directory_is_not_a_params_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        checked_params_file(str(tmp_path))


# --- rviz -------------------------------------------------------------------------------------------------------


def test_rviz_wanted_and_installed_starts() -> None:
    assert rviz_to_start(True, rviz_installed=True) is True


@pytest.mark.parametrize("installed", [True, False])
def test_rviz_not_wanted_never_starts(installed: bool) -> None:
    assert rviz_to_start(False, rviz_installed=installed) is False


def test_rviz_wanted_but_not_installed_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError) as caught:
        rviz_to_start(True, rviz_installed=False)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith("launch argument rviz:=true, but package 'rviz2' is not installed")


# --- node exit --------------------------------------------------------------------------------------------------


def test_a_clean_node_exit_shuts_the_launch_down_cleanly() -> None:
    assert node_exit_error(0) is None


@pytest.mark.parametrize(
    ("returncode", "reason"),
    [
        (2, "a configuration error, named in its 'cannot start' line above"),
        (1, "see its log above"),
        (-9, "killed by signal 9"),
        (-11, "killed by signal 11"),
        (None, "see its log above"),
    ],
)
def test_a_failed_node_exit_fails_the_launch(returncode: int | None, reason: str) -> None:
    assert node_exit_error(returncode) == f"seg_perception_node exited with status {returncode} ({reason})"


# --- fastdds_profile default ------------------------------------------------------------------------------------


def test_profile_default_is_the_shipped_file_when_the_variable_is_unset() -> None:
    assert default_fastdds_profile({}, SHIPPED_PROFILE) == SHIPPED_PROFILE
    assert default_fastdds_profile({PROFILE_VARIABLE: ""}, SHIPPED_PROFILE) == SHIPPED_PROFILE


def test_profile_default_is_the_variable_when_set() -> None:
    assert default_fastdds_profile({PROFILE_VARIABLE: "/etc/my_profile.xml"}, SHIPPED_PROFILE) == "/etc/my_profile.xml"


# --- the launch file calls them where it must --------------------------------------------------------------------


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), str(LAUNCH_FILE))


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    (found,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    return found


def _called(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _first_line_calling(function: ast.FunctionDef, name: str) -> int:
    lines = [n.lineno for n in ast.walk(function) if _called(n) == name]
    assert lines, f"{function.name} never calls {name}"
    return min(lines)


@pytest.mark.parametrize("decision", ["checked_params_file", "rviz_to_start", "parameter_overrides"])
@pytest.mark.parametrize("effect", ["Node", "NamedTemporaryFile", "open"])
def test_every_refusal_comes_before_anything_starts_or_is_written(
    launch_tree: ast.Module, decision: str, effect: str
) -> None:
    """A refusal after the node was created would leave it running without its launch (an orphan)."""
    function = _function(launch_tree, "_node_and_rviz")
    assert _first_line_calling(function, decision) < _first_line_calling(function, effect), (
        f"{decision} must be decided before {effect}(...)"
    )


def test_the_rviz_config_is_removed_at_shutdown(launch_tree: ast.Module) -> None:
    function = _function(launch_tree, "_node_and_rviz")
    handlers = [n for n in ast.walk(function) if _called(n) == "OnShutdown"]
    assert len(handlers) == 1
    text = ast.unparse(handlers[0])
    assert "out.name" in text and ("unlink" in text or "remove" in text), text


def test_the_node_exit_ends_the_launch_through_node_exit_error(launch_tree: ast.Module) -> None:
    function = _function(launch_tree, "_node_and_rviz")
    (handler,) = [n for n in ast.walk(function) if _called(n) == "OnProcessExit"]
    keywords = {k.arg: ast.unparse(k.value) for k in handler.keywords}
    assert keywords == {"target_action": "node", "on_exit": "_end_launch"}
    end = _function(launch_tree, "_end_launch")
    (decision,) = [n for n in ast.walk(end) if _called(n) == "node_exit_error"]
    assert [ast.unparse(a) for a in decision.args] == ["event.returncode"]
    raises = [n for n in ast.walk(end) if isinstance(n, ast.Raise)]
    assert raises, "a failed node exit must raise: LaunchService.run returns 1 only for an exception"
    shutdowns = [n for n in ast.walk(end) if _called(n) == "Shutdown"]
    assert shutdowns, "a clean node exit must shut the launch down"


def test_show_args_shows_a_plain_profile_path(launch_tree: ast.Module) -> None:
    """--show-args prints a substitution's repr: an EnvironmentVariable default showed as EnvVar('...')."""
    (declare,) = [
        n
        for n in ast.walk(launch_tree)
        if _called(n) == "DeclareLaunchArgument"
        and isinstance(n, ast.Call)
        and isinstance(n.args[0], ast.Constant)
        and n.args[0].value == "fastdds_profile"
    ]
    default = next(k.value for k in declare.keywords if k.arg == "default_value")
    assert _called(default) == "default_fastdds_profile", ast.unparse(default)
    assert ast.unparse(default).startswith("default_fastdds_profile(os.environ,")
