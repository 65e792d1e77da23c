"""The runnable lines of the README and of the docs pages: every `.venv/bin/seg-perception ...` command of
their ```sh / ```bash blocks, page by page, in order.

Rules the pages follow (and `test_readme_commands_run.py` enforces):
* A runnable line lives in a ```sh (or ```bash / ```shell) block and starts with `.venv/bin/seg-perception`;
  a trailing backslash continues it on the next line. Other lines of those blocks (`make`, `ros2`, `sudo`)
  are not run by the test, except in a script block.
* A block with a command ending in `&` (a background job) is a script block: the test runs the whole block,
  every line as written, as one non-interactive bash script (`bash -e`), as a user's script would run it.
  The block itself must stop what it started in the background (a script's background jobs ignore SIGINT,
  so it stops them by process id); the script must exit 0 and leave no process behind.
* A comment `# exits N` on a line says the line is meant to exit with status N; otherwise 0 is expected.
* Synopses with placeholders (`[--opt]`, `DIR`, `SPEC.yaml`) go in a ```text block: never run, never
  checked; a `.venv/bin/seg-perception` command anywhere else (in prose, or another kind of block) is an
  error, so no command escapes the test.
* The pages run in this order: README.md, then the docs pages in the order of mkdocs.yml's nav, then any
  other page under docs/ (sorted), so a page may use what an earlier one wrote.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CLI = ".venv/bin/seg-perception"
RUNNABLE_FENCES = ("sh", "bash", "shell", "console")
_EXPECTED_EXIT = re.compile(r"#.*\bexits? (?:with )?(?:status |code )?(\d+)\b")
# Placeholders a user cannot type as they are: `[--opt]`, `<thing>`, `A|B` choices, CAPITALISED names
# (DIR, IMAGE_OR_DIR, SPEC.yaml) other than real option values.
_PLACEHOLDER = re.compile(r"\[-|<[\w ./-]+>|\s\w+\|\w+|(?<![\w$=])[A-Z][A-Z0-9_]{2,}(?![\w=])")
_REAL_CAPITALS = frozenset({"RGB", "BGR", "NCHW", "NHWC"})


@dataclass(frozen=True)
class ReadmeCommand:
    """One runnable README command: its first line number, the text (continuations joined) and how it runs."""

    line: int
    text: str  # as a user types it, without a trailing `&`
    background: bool
    expected_exit: int
    end_line: int = 0  # the last physical line (after continuations)
    block_line: int = 0  # the line of the block's opening fence
    page: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"

    @property
    def args(self) -> list[str]:
        """The command's words after the executable, as the shell splits them (comments dropped)."""
        return shlex.split(self.text, comments=True)[1:]

    @property
    def subcommand(self) -> str:
        words = [w for w in self.args if not w.startswith("-")]
        return words[0] if words else ""


@dataclass(frozen=True)
class ReadmeProblem:
    line: int
    message: str


@dataclass(frozen=True)
class ScriptBlock:
    """A command block with a background job: run whole, as one non-interactive bash script."""

    page: str
    line: int  # the line of the opening fence
    lines: tuple[tuple[int, str], ...]  # (line number, text) of every line inside the fences
    commands: tuple[ReadmeCommand, ...] = field(default=())

    @property
    def where(self) -> str:
        return f"{self.page} lines {self.line + 1}-{self.line + len(self.lines)} (a script block)"


def documentation_pages(repo: Path) -> list[Path]:
    """README.md, the docs pages in mkdocs.yml's nav order, then every other page under docs/ (sorted)."""
    docs = repo / "docs"
    nav = yaml.safe_load((repo / "mkdocs.yml").read_text(encoding="utf-8")).get("nav", [])
    ordered: list[Path] = [repo / "README.md"]

    def walk(entry: object) -> None:
        if isinstance(entry, str):
            if entry.endswith(".md") and (docs / entry) not in ordered:
                ordered.append(docs / entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                walk(value)
        elif isinstance(entry, list):
            for item in entry:
                walk(item)

    walk(nav)
    ordered += sorted(p for p in docs.rglob("*.md") if p not in ordered)
    return [p for p in ordered if p.is_file()]


def script_blocks(commands: list[ReadmeCommand], text: str) -> dict[int, ScriptBlock]:
    """The script blocks of one page, keyed by the line of their opening fence."""
    lines = text.splitlines()
    blocks: dict[int, ScriptBlock] = {}
    for fence in sorted({c.block_line for c in commands if c.background}):
        inside = []
        for number in range(fence + 1, len(lines) + 1):
            if lines[number - 1].strip().startswith("```"):
                break
            inside.append((number, lines[number - 1]))
        members = tuple(c for c in commands if c.block_line == fence)
        blocks[fence] = ScriptBlock(members[0].page, fence, tuple(inside), members)
    return blocks


def _strip_comment(text: str) -> str:
    return " ".join(shlex.split(text, comments=True))


def parse_readme(text: str, page: str = "README.md") -> tuple[list[ReadmeCommand], list[ReadmeProblem]]:
    """The runnable commands of one page in order, and every line that breaks the rules above."""
    commands: list[ReadmeCommand] = []
    problems: list[ReadmeProblem] = []
    fence: str | None = None  # the info string of the open block, None outside blocks
    fence_line = 0
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            if pending:
                problems.append(ReadmeProblem(start, "a continued command (trailing backslash) ends its block"))
                pending = []
            fence = None if fence is not None else (stripped[3:].strip().split() or [""])[0]
            fence_line = number
            continue
        if fence in RUNNABLE_FENCES:
            if pending or stripped.startswith(CLI):
                if not pending:
                    start = number
                pending.append(stripped.removesuffix("\\").strip())
                if stripped.endswith("\\"):
                    continue
                commands.append(_command(start, " ".join(pending), problems, number, fence_line, page))
                pending = []
            elif CLI in stripped:
                problems.append(ReadmeProblem(number, f"{CLI} must start the line to be run by the README test"))
        elif _escapes_the_test(fence, raw):
            where = "inside a ```" + fence + " block" if fence is not None else "in prose"
            problems.append(
                ReadmeProblem(
                    number,
                    f"{CLI} {where}: put runnable lines in a ```sh block and synopses with placeholders "
                    "in a ```text block",
                )
            )
    return commands, problems


def _escapes_the_test(fence: str | None, raw: str) -> bool:
    """A command in prose (`.venv/bin/seg-perception eval ...`), or the CLI in a block of another kind."""
    if fence is None:
        return re.search(re.escape(CLI) + r" +\w", raw) is not None
    return fence != "text" and CLI in raw


def _command(
    line: int, text: str, problems: list[ReadmeProblem], end_line: int, block_line: int, page: str
) -> ReadmeCommand:
    expected = _EXPECTED_EXIT.search(text)
    try:
        code = _strip_comment(text)
    except ValueError as exc:
        problems.append(ReadmeProblem(line, f"the shell cannot split this line: {exc}"))
        code = text
    background = code.endswith("&")
    if background:
        text = text[: text.rindex("&")].rstrip()
        code = code.removesuffix("&").rstrip()
    for placeholder in _PLACEHOLDER.finditer(code):
        if placeholder.group() not in _REAL_CAPITALS:
            problems.append(ReadmeProblem(line, f"placeholder {placeholder.group().strip()!r} in a runnable line"))
            break
    code_exit = int(expected.group(1)) if expected else 0
    return ReadmeCommand(line, text, background, code_exit, end_line, block_line, page)
