"""The README's runnable lines: every `.venv/bin/seg-perception ...` command of its ```sh blocks, in order.

Rules the README follows (and `test_readme_commands_run.py` enforces):
* A runnable line lives in a ```sh (or ```bash / ```shell) block and starts with `.venv/bin/seg-perception`;
  a trailing backslash continues it on the next line. Other lines of those blocks (`make`, `ros2`, `kill`)
  are not run by the test.
* A command ending in `&` runs in the background; the test stops it with SIGINT (Ctrl-C) once the next
  foreground command has finished, and expects it to be running until then and to exit 0.
* A comment `# exits N` on a line says the line is meant to exit with status N; otherwise 0 is expected.
* Synopses with placeholders (`[--opt]`, `DIR`, `SPEC.yaml`) go in a ```text block: never run, never
  checked; a `.venv/bin/seg-perception` command anywhere else in the README (in prose, or another kind of
  block) is an error, so no command escapes the test.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

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


def _strip_comment(text: str) -> str:
    return " ".join(shlex.split(text, comments=True))


def parse_readme(text: str) -> tuple[list[ReadmeCommand], list[ReadmeProblem]]:
    """The runnable commands in README order, and every line that breaks the rules above."""
    commands: list[ReadmeCommand] = []
    problems: list[ReadmeProblem] = []
    fence: str | None = None  # the info string of the open block, None outside blocks
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            if pending:
                problems.append(ReadmeProblem(start, "a continued command (trailing backslash) ends its block"))
                pending = []
            fence = None if fence is not None else (stripped[3:].strip().split() or [""])[0]
            continue
        if fence in RUNNABLE_FENCES:
            if pending or stripped.startswith(CLI):
                if not pending:
                    start = number
                pending.append(stripped.removesuffix("\\").strip())
                if stripped.endswith("\\"):
                    continue
                commands.append(_command(start, " ".join(pending), problems))
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


def _command(line: int, text: str, problems: list[ReadmeProblem]) -> ReadmeCommand:
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
    return ReadmeCommand(line, text, background, int(expected.group(1)) if expected else 0)
