"""Argument types shared by the `seg-perception` subcommands (argparse calls them on the raw text)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be positive")
    return w, h


def size_list(text: str) -> list[tuple[int, int]]:
    """'640x480,1280x720' -> [(640, 480), (1280, 720)]."""
    sizes = [parse_size(part) for part in text.split(",") if part]
    if not sizes:
        raise argparse.ArgumentTypeError(f"{text!r} names no WIDTHxHEIGHT size")
    return sizes


def number(
    kind: type[int] | type[float], minimum: float, strict: bool = False, maximum: float | None = None
) -> Callable[[str], float]:
    """An argparse type: `kind` parsed from the text, at least `minimum` (above it when `strict`), at most
    `maximum` when given."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < minimum or (strict and value == minimum):
            bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at most {maximum:g}")
        return value

    return parse


# Generated scenes are drawn in full in memory (image, labels and float intermediates, about 60 bytes per
# pixel), so their size is capped: 8K UHD is far beyond any camera the node serves.
SYNTHETIC_MAX_SIZE = (7680, 4320)


def synthetic_size(text: str) -> tuple[int, int]:
    """parse_size for generated scenes: at most SYNTHETIC_MAX_SIZE in each dimension."""
    w, h = parse_size(text)
    max_w, max_h = SYNTHETIC_MAX_SIZE
    if w > max_w or h > max_h:
        raise argparse.ArgumentTypeError(
            f"size {text!r} is larger than the generated-scene limit of {max_w}x{max_h} (8K UHD)"
        )
    return w, h


def shown_default(value: object) -> str:
    """A default as a user types it: (1280, 720) -> 1280x720, a list of sizes comma-separated, 15.0 -> 15."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return f"{value[0]}x{value[1]}"
    if isinstance(value, (list, tuple)):
        return ",".join(shown_default(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def has_shown_default(action: argparse.Action) -> bool:
    """Whether --help should show the option's default: a value, not an absent one (None, off, empty)."""
    default = action.default
    return not (default is None or default is False or default == argparse.SUPPRESS or default in ("", [], ()))


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's ArgumentDefaultsHelpFormatter, but only for real defaults (no `default: None` or `False`),
    written as the user types them, and left alone where the help text already says its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if has_shown_default(action) and "default" not in text.lower():
            text += f" (default: {shown_default(action.default)})".replace("%", "%%")
        return text


class RawDescriptionDefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter, DefaultsHelpFormatter):
    """DefaultsHelpFormatter with the description and epilog kept as written (tables, paragraphs)."""


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the value (and where the help is), then exit 2; and
    --help shows every option's default (DefaultsHelpFormatter) unless a command picks another formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
