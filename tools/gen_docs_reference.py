"""Write the docs' reference pages from the tables in the code, or check that the committed ones are current.

    .venv/bin/python tools/gen_docs_reference.py           # rewrite docs/reference/*.md and generated blocks
    .venv/bin/python tools/gen_docs_reference.py --check   # exit 1 naming every page that is out of date

Generated: node parameters (seg_perception.ros.parameters.PARAMETERS), the node's topics and their QoS
(seg_perception.ros.topics.TOPICS), its /diagnostics keys (seg_perception.ros.diagnostics_keys), every CLI
command's --help (seg_perception.cli.build_parser), every error message the package raises, and the layer
table of docs/architecture.md (seg_perception.layers).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
HELP_COLUMNS = "100"  # argparse wraps to $COLUMNS: fixed, so the page does not depend on the terminal
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z_]+) -->\n).*?(<!-- end generated -->)", re.S)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if value == "":
        return '""'
    return str(value)


def _allowed(p: object) -> str:
    choices = getattr(p, "choices", ())
    low, high = getattr(p, "minimum", None), getattr(p, "maximum", None)
    if choices:
        return ", ".join(f"`{c}`" for c in choices)
    if low is not None or high is not None:
        return f"{_value(low) if low is not None else '-inf'} to {_value(high) if high is not None else 'inf'}"
    return ""


def parameters_page() -> str:
    from seg_perception.ros.parameters import PARAMETERS

    rows = [
        f"| `{p.name}` | `{_cell(_value(p.default))}` | {_cell(_allowed(p))} | {_cell(p.description)} |"
        for p in PARAMETERS
    ]
    return (
        "# Node parameters\n\n"
        "Generated from `seg_perception/ros/parameters.py` by `tools/gen_docs_reference.py`; do not edit by hand.\n"
        "Every parameter is declared with a descriptor (its range or choices), read once at start and validated:\n"
        "a bad value stops the node with one line naming the parameter.\n\n"
        "| name | default | allowed | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _qos_value(value: int | str) -> str:
    from seg_perception.ros.parameters import PARAMETERS

    defaults = {p.name: p.default for p in PARAMETERS}
    if isinstance(value, str) and value in defaults:
        return f"`{value}` (default {_value(defaults[value])})"
    return str(value).replace("_", " ")


def topics_page() -> str:
    from seg_perception.ros.topics import TOPICS

    def requires(t: object) -> str:
        need = getattr(t, "requires", None)
        if need is None:
            return ""
        key, value = need
        return " Only where `vision_msgs` imports." if key == "vision_msgs" else f" Only with `{key}: {_value(value)}`."

    def intake(t: object) -> str:
        return " On the camera intake node `<node>_camera_intake`." if getattr(t, "intake", False) else ""

    rows = [
        f"| `{t.name}` | `{t.type}` | {t.direction} | {_qos_value(t.reliability)}, {t.durability.replace('_', ' ')}, "
        f"keep last {_qos_value(t.depth)} | {_cell(t.when)}.{requires(t)}{intake(t)} |"
        for t in TOPICS
    ]
    return (
        "# Topics and QoS\n\n"
        "Generated from `seg_perception/ros/topics.py` by `tools/gen_docs_reference.py`; do not edit by hand.\n"
        "`test/test_topics_and_diagnostics_match_the_node.py` starts the node and checks over DDS that it exposes\n"
        "exactly these topics, types, reliabilities and durabilities. Names are relative to the node's namespace\n"
        "(`~/`: under the node's name); `<camera>/` is empty for one camera and `front/`... with `cameras: [front,\n"
        "...]`; `<head>` is each mask of a multi-task spec besides the drivable one. A QoS naming a parameter\n"
        "takes its value; `auto` matches the publishers found (reliable only when all of them offer it).\n"
        "What each output holds and how Nav2 reads them: [the node](../node.md).\n\n"
        "| topic | type | direction | QoS | when |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _condition(requires: str) -> str:
    if not requires:
        return ""
    if requires == "loss_not_counted":
        return " (while losses are not counted)"
    return f" (with `{requires}: true`)"


def diagnostics_page() -> str:
    from seg_perception.ros.diagnostics_keys import DIAGNOSTICS_KEYS

    def key(row: object) -> str:
        each = getattr(row, "each", ())
        name = f"`{row.key}`"  # type: ignore[attr-defined]
        if not each:
            return name + _condition(getattr(row, "requires", ""))
        return f"{name}, `<x>` each of " + ", ".join(f"`{x}`" for x in each)

    rows = [f"| {_cell(key(r))} | {_cell(r.meaning)} | {_cell(r.values)} |" for r in DIAGNOSTICS_KEYS]
    return (
        "# /diagnostics keys\n\n"
        "Generated from `seg_perception/ros/diagnostics_keys.py` by `tools/gen_docs_reference.py`; do not edit by\n"
        "hand. The node publishes one `diagnostic_msgs/DiagnosticStatus` per camera on `/diagnostics` every\n"
        "`diagnostics_period` seconds, named `<node>: <camera>`, with these keys in this order;\n"
        "`test/test_topics_and_diagnostics_match_the_node.py` checks over DDS that the node publishes exactly\n"
        "them. Its level: ERROR when the camera's health failed, WARN when input is stale, frames failed or\n"
        "health is degraded, else OK ([health](../node.md#health)).\n\n"
        "| key | meaning | values |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def cli_page() -> str:
    os.environ["COLUMNS"] = HELP_COLUMNS
    from seg_perception.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = [
        "# Command line\n\n"
        "Generated from `seg_perception/cli.py` (`build_parser`) by `tools/gen_docs_reference.py`; do not edit by\n"
        "hand. Each section is the command's `--help`. User errors exit 2 with one line; see\n"
        "[troubleshooting](../troubleshooting.md).\n\n## seg-perception\n\n```text\n" + parser.format_help() + "```\n"
    ]
    for name, command in sub.choices.items():
        parts.append(f"\n## {name}\n\n```text\n{command.format_help()}```\n")
    return "".join(parts)


def layers_block() -> str:
    from seg_perception.layers import CONFINED_IMPORTS, LAYERS

    def names(items: tuple[str, ...]) -> str:
        return ", ".join(f"`{item}`" for item in items)

    rows = [f"| {i} | `{name}` | {names(members)} | {what} |" for i, (name, members, what) in enumerate(LAYERS)]
    confined = [f"| `{module}` | {names(places)} |" for module, places in CONFINED_IMPORTS.items()]
    return (
        "| rank | layer | modules under `seg_perception/` | job |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n| third-party import | only in |\n|---|---|\n"
        + "\n".join(confined)
    )


ERROR_CLASSES = ("SegPerceptionError", "ModelSpecError", "ImageCodecError", "BackendError")


def _message(node: ast.expr) -> str | None:
    """An error message as a reader meets it: f-string fields shown as `…`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _message(node.left), _message(node.right)
        return None if left is None or right is None else left + right
    return None


def errors_page() -> str:
    package = REPO / "seg_perception"
    sections = []
    for path in sorted(package.rglob("*.py")):
        found = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
                continue
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            text = _message(node.exc.args[0]) if name in ERROR_CLASSES else None
            if text:
                found.append((node.lineno, name, " ".join(text.split())))
        if found:
            unique = dict.fromkeys((name, text) for _, name, text in sorted(found))  # in file order, once each
            rows = "\n".join(f"| `{name}` | {_cell(text)} |" for name, text in unique)
            where = path.relative_to(REPO).as_posix()
            sections.append(f"\n## {where}\n\n| class | message (`…`: filled in at run time) |\n|---|---|\n{rows}\n")
    return (
        "# Error messages\n\n"
        "Generated from every `raise` of the package's own errors by `tools/gen_docs_reference.py`; do not edit by\n"
        "hand. The command line prints each as `error: <message>` and exits 2; the node logs it and, where it\n"
        "happens at start, exits 2. What to do about the common ones: [troubleshooting](../troubleshooting.md).\n"
        + "".join(sections)
    )


def spec_page() -> str:
    from seg_perception.core.spec_keys import SPEC_KEYS

    groups = dict.fromkeys(k.group for k in SPEC_KEYS)
    sections = []
    for group in groups:
        rows = "\n".join(
            f"| `{k.key}` | {'yes' if k.required else 'no'} | {_cell(k.values)} | {_cell(k.meaning)} |"
            for k in SPEC_KEYS
            if k.group == group
        )
        title = "top level" if not group else f"`{group}`"
        sections.append(f"\n## {title}\n\n| key | required | values | meaning |\n|---|---|---|---|\n{rows}\n")
    return (
        "# Model spec keys\n\n"
        "Generated from `seg_perception/core/spec_keys.py` by `tools/gen_docs_reference.py`; do not edit by hand.\n"
        "`test/test_spec_keys_are_the_parsers.py` checks that the spec parser (`core/model_spec.py`) allows and\n"
        "requires exactly these keys. Any other key is refused with one line naming it. How to write a spec for\n"
        "your model, with examples: [your own model](../model.md).\n" + "".join(sections)
    )


PAGES: dict[str, Callable[[], str]] = {
    "reference/errors.md": errors_page,
    "reference/parameters.md": parameters_page,
    "reference/cli.md": cli_page,
    "reference/topics.md": topics_page,
    "reference/diagnostics.md": diagnostics_page,
    "reference/model-spec.md": spec_page,
}
BLOCKS: dict[str, Callable[[], str]] = {"layers": layers_block}


def _filled(page: Path, m: re.Match[str]) -> str:
    make = BLOCKS.get(m.group("name"))
    if make is None:
        raise SystemExit(f"{page}: unknown generated block {m.group('name')!r}")
    return m.group(1) + make() + "\n" + m.group(3)


def expected(docs: Path = DOCS) -> dict[Path, str]:
    """Every generated file's path under `docs` and the text it should have."""
    out = {docs / name: make() for name, make in PAGES.items()}
    for page in sorted(docs.rglob("*.md")):
        if page in out:
            continue
        text = page.read_text(encoding="utf-8")

        new = BLOCK.sub(lambda m, page=page: _filled(page, m), text)
        if new != text:
            out[page] = new
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report out-of-date pages instead of writing them")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs directory (default: docs/)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected(args.docs).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(args.docs).as_posix())
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        sys.stderr.write("out of date (run .venv/bin/python tools/gen_docs_reference.py): " + ", ".join(stale) + "\n")
        return 1
    for name in stale:
        sys.stderr.write(f"wrote {name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
