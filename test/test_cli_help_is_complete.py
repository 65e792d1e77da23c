"""Every option of every `seg-perception` command says what it does and, where it has one, its default."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seg_perception import demo
from seg_perception.cli import build_parser
from seg_perception.cli_args import has_shown_default, shown_default
from seg_perception.ros.parameters import PARAMETERS

REPO = Path(__file__).resolve().parent.parent
SKIPPED_ACTIONS = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"seg-perception": parser, **sub.choices, "demo": demo.build_parser()}


def _options() -> list[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    return [
        (name, command, action)
        for name, command in _commands().items()
        for action in command._actions
        if not isinstance(action, SKIPPED_ACTIONS)
    ]


def _label(name: str, action: argparse.Action) -> str:
    return f"{name} {'/'.join(action.option_strings) or action.dest}"


def test_every_option_has_a_help_text() -> None:
    missing = [_label(n, a) for n, _, a in _options() if not (a.help or "").strip() or a.help == argparse.SUPPRESS]
    assert missing == []
    assert len(_options()) > 100  # the walk really reached every subcommand's options


def test_every_default_is_shown_as_the_user_types_it() -> None:
    wrong = []
    for name, command, action in _options():
        if not has_shown_default(action):
            continue
        text = command._get_formatter()._expand_help(action)
        if shown_default(action.default) not in text or "default" not in text.lower():
            wrong.append(f"{_label(name, action)}: default {shown_default(action.default)!r} not in {text!r}")
    assert wrong == []


def test_soak_and_bench_help_show_their_defaults() -> None:
    soak = " ".join(_commands()["soak"].format_help().split())  # argparse wraps to the terminal
    bench = " ".join(_commands()["bench"].format_help().split())
    for text in ("(default: 20000)", "(default: 500)", "(default: 320x180)", "(default: 1)"):
        assert text in soak
    assert "(default: 640x480,1280x720,1920x1080)" in bench
    assert "(default: 20)" in bench


def test_run_help_lists_every_node_parameter_with_its_default() -> None:
    text = _commands()["run"].format_help()
    assert "--ros-args -p NAME:=VALUE" in text and "docs/reference/parameters.md" in text
    listed = dict(re.findall(r"^  ([a-z_0-9]+) = (.*?)(?:  \[.*\])?$", text, re.M))
    assert list(listed) == [p.name for p in PARAMETERS]
    assert listed["backend"] == "auto" and listed["model"] == '""' and listed["publish_overlay"] == "true"
    assert "  overlay_alpha = 0.5  [0..1]" in text


def _package_xml_version() -> str:
    found = re.search(r"<version>([^<]+)</version>", (REPO / "package.xml").read_text(encoding="utf-8"))
    assert found is not None
    return found.group(1)


def test_version_is_the_package_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seg_perception.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"seg-perception {_package_xml_version()}\n"


@pytest.mark.parametrize("command", ["infer", "build-engine", "process"])
def test_backend_and_precision_options_explain_their_choices(command: str) -> None:
    text = " ".join(_commands()[command].format_help().split())
    assert ("--precision" in text and "accuracy gate" in text) or "TensorRT when it imports" in text


def test_the_demo_parser_shows_its_defaults_and_refuses_bad_values_in_one_line() -> None:
    assert "demo" in _commands()  # walked by the tests above: every option has help, every default shown
    text = " ".join(demo.build_parser().format_help().split())
    for shown in ("(default: demo_out)", "(default: 300)", "(default: 1280x720)", "(default: 30)", "(default: 7)"):
        assert shown in text
    for bad, message in (("--frames=0", "'0' must be at least 1"), ("--rate=-1", "'-1' must be at least 0.1")):
        proc = subprocess.run(
            [sys.executable, "-m", "seg_perception.demo", bad], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr == (
            f"python -m seg_perception.demo: error: argument {bad.split('=')[0]}: {message} "
            "(see python -m seg_perception.demo --help)\n"
        ), proc.stderr
