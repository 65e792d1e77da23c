"""The getting-started page says exactly which commands take `--model`, as the parser has it (issue 22)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from seg_perception.cli import build_parser

PAGE = Path(__file__).resolve().parent.parent / "docs" / "getting-started.md"
TAKES = re.compile(r"picks the model of every command that runs one:(.*?)\. ", re.S)
REFUSES = re.compile(r"`run`, takes it as a ROS parameter.*?;(.*?)run no model and refuse", re.S)


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _named(pattern: re.Pattern[str]) -> set[str]:
    found = pattern.search(" ".join(PAGE.read_text(encoding="utf-8").split()))
    assert found, f"{PAGE.name} no longer has the sentence {pattern.pattern!r}"
    return set(re.findall(r"`([a-z-]+)`", found.group(1)))


def test_the_page_names_every_command_that_takes_model_and_only_those() -> None:
    with_model = {name for name, p in _commands().items() if any("--model" in a.option_strings for a in p._actions)}
    assert _named(TAKES) == with_model
    assert _named(REFUSES) == set(_commands()) - with_model - {"run"}
    assert "run" not in with_model  # the node takes it as `-p model:=...`, as the page says
