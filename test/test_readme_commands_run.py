"""The README and the docs pages are a test: every `.venv/bin/seg-perception ...` line of their ```sh / ```bash
blocks runs, as written, in order: README.md first, then the docs pages in mkdocs.yml's nav order.

Where a user would type them: a scratch directory that looks like a fresh clone after `make test` (links to
every tracked top-level entry of the repository and to its `.venv`), so relative paths in the README
(`heldout`, `drive_bag`, `config/...`) resolve as they would for the user and every output stays in the
scratch directory. HOME points into it too (`quantize` fills `~/.cache/seg_perception`), the Fast DDS
profile the Makefile exports is unset (a user's shell does not have it), and each run gets its own DDS
domain, localhost only. See `readme_commands.py` for what counts as a runnable line, and for script blocks
(a block with a background job runs whole as one non-interactive bash script, which must stop its own jobs).
`SEG_README_PAGES=docs/bags.md,...` runs only those pages (in the same order): a quick check of one page.

Only the lines in SMALLER_RUNS run with other sizes, by appending options (argparse keeps the last
value, so the README's own options are still parsed); every other line runs verbatim. A line that
exits with another status than expected fails the test with its output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from readme_commands import ReadmeCommand, ScriptBlock, documentation_pages, parse_readme, script_blocks

from seg_perception.ros.domain_ids import release_domain_id, reserve_domain_id

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = documentation_pages(REPO)
VENV_CLI = REPO / ".venv" / "bin" / "seg-perception"

# README command (exactly as written) -> (options appended, why the full run is not made here).
SMALLER_RUNS: dict[str, tuple[str, str]] = {
    ".venv/bin/seg-perception bench --json bench.json --plot bench.png": (
        "--frames 5 --sizes 320x180 --node-seconds 3",
        "the full benchmark takes about 3 minutes (100 repeats, 3 sizes, 2 node phases of 20 s); "
        "this runs every stage once more briefly",
    ),
    ".venv/bin/seg-perception synth --bag drive_bag --frames 300 --size 1280x720 --rate 15": (
        "--frames 60",
        "the 20 s drive takes about 1.5 minutes to draw, process and replay in real time on 2 loaded cores; "
        "a 4 s drive goes through the same lines (process and replay run verbatim on it)",
    ),
    ".venv/bin/seg-perception bench-fleet --json bench_fleet.json": (
        "--bags 2 --frames 4 --size 320x180",
        "4 drives of 40 frames at 640x360, processed twice on Ray, take about a minute on 2 loaded cores; "
        "2 small drives go through the same lines and JSON",
    ),
    ".venv/bin/seg-perception soak --frames 20000": (
        "--frames 200 --warmup 20",
        "20,000 frames through the node take about 5 minutes; 200 go through the same closed loop",
    ),
}
# Foreground commands that serve until Ctrl-C: started, awaited until they log one of these (the node has
# loaded its model and subscribed, or waits for a publisher to match its QoS to), then sent SIGINT.
SERVES_UNTIL_INTERRUPTED: dict[str, re.Pattern[str]] = {
    "run": re.compile(r"subscribed to |waiting for a publisher on ")
}
COMMAND_TIMEOUT_S = 600.0  # generous: the machine may be loaded; no line is expected to come near it
SCRIPT_TIMEOUT_S = 240.0  # a script block that outlives this has left a job it should have stopped
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
# The figure the docs quote for their eval block, and the floor they promise.
EVAL_FIGURE = re.compile(r"The block above gives mIoU ([0-9.]+)")
EVAL_FLOOR = 0.84


def _fresh_clone_dir(root: Path) -> Path:
    """A directory whose entries are the repository's tracked top-level entries and its .venv (links)."""
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=False, timeout=60
    )
    if tracked.returncode == 0 and tracked.stdout.strip():
        names = {line.split("/", 1)[0] for line in tracked.stdout.splitlines() if line}
    else:  # not a git checkout (an unpacked archive): everything but the usual generated outputs
        names = {p.name for p in REPO.iterdir() if not p.name.startswith(".")} - {"demo_out", "bench_out", "build"}
    work = root / "clone"
    work.mkdir()
    for name in sorted(names | {".venv"}):
        if (REPO / name).exists():
            (work / name).symlink_to(REPO / name)
    return work


def _environment(scratch: Path, domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    env.pop("XDG_CACHE_HOME", None)
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
    )
    return env


def _code(command: ReadmeCommand) -> str:
    """The command without its comment, as SMALLER_RUNS names it."""
    return command.text.split(" #", 1)[0].strip()


def _shell_line(command: ReadmeCommand) -> str:
    extra = SMALLER_RUNS.get(_code(command))
    code = _code(command) if extra else command.text
    return f"exec {code} {extra[0]}" if extra else f"exec {code}"


def _script_text(block: ScriptBlock) -> str:
    """The block's lines as written, but the options of SMALLER_RUNS appended to the lines it names."""
    ends = {c.end_line: SMALLER_RUNS[_code(c)][0] for c in block.commands if _code(c) in SMALLER_RUNS}
    lines = []
    for number, raw in block.lines:
        if number in ends:
            code, hash_, comment = raw.partition(" #")
            code = code.rstrip()
            background = code.endswith("&")
            code = code.removesuffix("&").rstrip() + " " + ends[number] + (" &" if background else "")
            raw = code + (f" #{comment}" if hash_ else "")
        lines.append(raw)
    return "\n".join(lines) + "\n"


def _pages_to_run() -> list[Path]:
    chosen = os.environ.get("SEG_README_PAGES", "").strip()
    if not chosen:
        return PAGES
    names = {(REPO / name.strip()).resolve() for name in chosen.split(",") if name.strip()}
    unknown = names - {p.resolve() for p in PAGES}
    assert not unknown, f"SEG_README_PAGES names pages that are not documentation pages: {sorted(map(str, unknown))}"
    return [p for p in PAGES if p.resolve() in names]


def _page_commands(pages: list[Path]) -> tuple[list[ReadmeCommand | ScriptBlock], list[str]]:
    """What runs, page by page and in order: single commands and whole script blocks; and every rule broken."""
    steps: list[ReadmeCommand | ScriptBlock] = []
    problems: list[str] = []
    for page in pages:
        name = str(page.relative_to(REPO))
        text = page.read_text(encoding="utf-8")
        commands, found = parse_readme(text, name)
        problems += [f"{name} line {p.line}: {p.message}" for p in found]
        blocks = script_blocks(commands, text)
        for command in commands:
            block = blocks.get(command.block_line)
            if block is None:
                steps.append(command)
            elif command is block.commands[0]:
                steps.append(block)
    return steps, problems


class _Script:
    """A script block running as `bash -e FILE` in a session of its own, so what it leaves behind can be found."""

    def __init__(self, block: ScriptBlock, cwd: Path, env: dict[str, str], path: Path) -> None:
        self.block = block
        path.write_text(_script_text(block))
        self.log = path.with_suffix(".log")
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            ["bash", "-e", str(path)],
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started = time.monotonic()

    def output(self, tail: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def run(self, timeout: float) -> tuple[int | None, bool]:
        """The script's exit status (None when it ran past the timeout) and whether a process of it survives."""
        try:
            code: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        survivors = self._session_alive()
        if survivors or code is None:
            self._kill_session()
        self._out.close()
        return code, survivors

    def _session_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _kill_session(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class _Started:
    """A README command running in a shell (exec'd, so signals reach seg-perception itself)."""

    def __init__(self, command: ReadmeCommand, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.command = command
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            ["bash", "-c", _shell_line(command)], cwd=cwd, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )
        self.started = time.monotonic()

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:]

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"README line {self.command.line} did not finish in {timeout:.0f} s: {self.command.text}\n"
                f"{self.output()}"
            ) from None
        finally:
            self._out.flush()

    def wait_for_output(self, pattern: re.Pattern[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pattern.search(self.output(tail=10**7)):
                return True
            if self.proc.poll() is not None:
                return pattern.search(self.output(tail=10**7)) is not None
            time.sleep(0.2)
        return False

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT, then the exit status (killed after STOP_TIMEOUT_S, which fails the caller)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.stop()
            return -9

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def _fail(command: ReadmeCommand, what: str, started: _Started) -> str:
    return f"{command.where}: {what}\n  {command.text}\n--- output (tail) ---\n{started.output()}"


@pytest.fixture()
def domain_id() -> Iterator[int]:
    domain = reserve_domain_id()
    yield domain
    release_domain_id(domain)


def test_readme_follows_the_rules_for_runnable_lines() -> None:
    steps, problems = _page_commands(PAGES)
    assert not problems, "\n".join(problems)
    commands = [c for step in steps for c in (step.commands if isinstance(step, ScriptBlock) else (step,))]
    texts = [_code(c) for c in commands]
    stale = sorted(set(SMALLER_RUNS) - set(texts))
    assert not stale, f"SMALLER_RUNS names lines the README and docs no longer have: {stale}"
    twice = sorted({f"{c.where}: {_code(c)}" for c in commands if texts.count(_code(c)) > 1})
    assert not twice, "the same command runs twice (run it once, on one page):\n" + "\n".join(twice)
    readme = [c for c in commands if c.page == "README.md"]
    assert len(readme) >= 4 and len(commands) >= 30  # the blocks this test was written for: it must find them
    assert any(isinstance(s, ScriptBlock) for s in steps), "no script block: the replay snippet is one"


@pytest.mark.skipif(not VENV_CLI.exists(), reason=f"{VENV_CLI} is missing: run `make venv` first")
def test_every_readme_command_runs_as_written(tmp_path: Path, domain_id: int) -> None:
    steps, problems = _page_commands(_pages_to_run())
    assert not problems, "\n".join(problems)
    work = _fresh_clone_dir(tmp_path)
    env = _environment(tmp_path, domain_id)
    timings: list[tuple[float, str, str]] = []
    try:
        for number, step in enumerate(steps):
            if isinstance(step, ScriptBlock):
                script = _Script(step, work, env, tmp_path / f"script_{number}.sh")
                code, survivors = script.run(SCRIPT_TIMEOUT_S)
                what = f"{step.where}\n{_script_text(step)}--- output (tail) ---\n{script.output()}"
                assert code is not None, f"did not finish in {SCRIPT_TIMEOUT_S:.0f} s (a job left running?): {what}"
                assert code == 0, f"exit status {code}, expected 0: {what}"
                assert not survivors, f"exited but left a process running: {what}"
                timings.append((time.monotonic() - script.started, step.where, "script"))
                continue
            command = step
            assert not command.background  # a block with a background job is a script block
            started = _Started(command, work, env, tmp_path / f"line_{number}.log")
            ready = SERVES_UNTIL_INTERRUPTED.get(command.subcommand)
            if ready is not None:
                assert started.wait_for_output(ready, READY_TIMEOUT_S), _fail(
                    command, f"never logged {ready.pattern!r}", started
                )
                code = started.interrupt()
                assert code == 0, _fail(command, f"exit status {code} after Ctrl-C (SIGINT), expected 0", started)
            else:
                code = started.wait(COMMAND_TIMEOUT_S)
                assert code == command.expected_exit, _fail(
                    command, f"exit status {code}, expected {command.expected_exit}", started
                )
            started.stop()
            timings.append((time.monotonic() - started.started, command.where, command.subcommand))
    finally:
        total = sum(t for t, _, _ in timings)
        print(f"README and docs commands, {total:.1f} s in all, seconds each:")
        print("\n".join(f"  {where} {what} {t:.1f}" for t, where, what in timings))
    if (work / "eval.json").exists() or any(p.name == "accuracy.md" for p in _pages_to_run()):
        _check_the_eval_figure(work)


def _check_the_eval_figure(work: Path) -> None:
    """The eval block's JSON holds the mIoU the docs quote for it (within rounding), above the floor."""
    quoted = [m for p in PAGES for m in EVAL_FIGURE.finditer(p.read_text(encoding="utf-8"))]
    assert len(quoted) == 1, f"the docs should say {EVAL_FIGURE.pattern!r} once, after their eval block"
    measured = json.loads((work / "eval.json").read_text())["miou"]
    assert measured >= EVAL_FLOOR, f"the docs' eval block gives mIoU {measured:.4f}, below {EVAL_FLOOR}"
    assert abs(measured - float(quoted[0].group(1))) < 0.0015, (
        f"the docs quote mIoU {quoted[0].group(1)} for their eval block; it gives {measured:.4f}"
    )
