"""The README is a test: every `.venv/bin/seg-perception ...` line of its ```sh blocks runs, as written, in order.

Where a user would type them: a scratch directory that looks like a fresh clone after `make test` (links to
every tracked top-level entry of the repository and to its `.venv`), so relative paths in the README
(`heldout`, `drive_bag`, `config/...`) resolve as they would for the user and every output stays in the
scratch directory. HOME points into it too (`quantize` fills `~/.cache/seg_perception`), the Fast DDS
profile the Makefile exports is unset (a user's shell does not have it), and each run gets its own DDS
domain, localhost only. See `readme_commands.py` for what counts as a runnable line.

Only the lines in SMALLER_RUNS run with other sizes, by appending options (argparse keeps the last
value, so the README's own options are still parsed); every other line runs verbatim. A line that
exits with another status than expected fails the test with its output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from readme_commands import ReadmeCommand, parse_readme

from seg_perception.ros.domain_ids import release_domain_id, reserve_domain_id

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
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
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
# The figure the README quotes for its eval block, and the floor it promises.
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


def _shell_line(command: ReadmeCommand) -> str:
    extra = SMALLER_RUNS.get(command.text.split(" #", 1)[0].strip())
    code = command.text.split(" #", 1)[0].strip() if extra else command.text
    return f"exec {code} {extra[0]}" if extra else f"exec {code}"


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
    return f"README line {command.line}: {what}\n  {command.text}\n--- output (tail) ---\n{started.output()}"


@pytest.fixture()
def domain_id() -> Iterator[int]:
    domain = reserve_domain_id()
    yield domain
    release_domain_id(domain)


def test_readme_follows_the_rules_for_runnable_lines() -> None:
    commands, problems = parse_readme(README.read_text(encoding="utf-8"))
    assert not problems, "\n".join(f"README line {p.line}: {p.message}" for p in problems)
    texts = {c.text.split(" #", 1)[0].strip() for c in commands}
    stale = sorted(set(SMALLER_RUNS) - texts)
    assert not stale, f"SMALLER_RUNS names lines the README no longer has: {stale}"
    assert len(commands) >= 10  # the blocks this test was written for: it must not silently find nothing


@pytest.mark.skipif(not VENV_CLI.exists(), reason=f"{VENV_CLI} is missing: run `make venv` first")
def test_every_readme_command_runs_as_written(tmp_path: Path, domain_id: int) -> None:
    commands, problems = parse_readme(README.read_text(encoding="utf-8"))
    assert not problems, "\n".join(f"README line {p.line}: {p.message}" for p in problems)
    work = _fresh_clone_dir(tmp_path)
    env = _environment(tmp_path, domain_id)
    background: list[_Started] = []
    timings: list[tuple[float, int, str]] = []
    try:
        for command in commands:
            started = _Started(command, work, env, tmp_path / f"line_{command.line}.log")
            if command.background:
                background.append(started)
                continue
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
            timings.append((time.monotonic() - started.started, command.line, command.subcommand))
            for job in background:  # a `cmd &` serves the foreground command after it, then gets Ctrl-C
                assert job.proc.poll() is None, _fail(
                    job.command,
                    f"the background command exited ({job.proc.returncode}) before README line {command.line} finished",
                    job,
                )
                code = job.interrupt()
                assert code == 0, _fail(job.command, f"exit status {code} after Ctrl-C (SIGINT), expected 0", job)
                job.stop()
            background.clear()
        assert not background, f"README line {background[0].command.line}: a background command nothing follows"
    finally:
        for job in background:
            job.stop()
        print("README commands, seconds each:", ", ".join(f"line {n} {s} {t:.1f}" for t, n, s in timings))
    _check_the_eval_figure(work)


def _check_the_eval_figure(work: Path) -> None:
    """The eval block's JSON holds the mIoU the README quotes for it (within rounding), above the floor."""
    quoted = EVAL_FIGURE.search(README.read_text(encoding="utf-8"))
    assert quoted, f"the README no longer says {EVAL_FIGURE.pattern!r} after its eval block"
    measured = json.loads((work / "eval.json").read_text())["miou"]
    assert measured >= EVAL_FLOOR, f"the README's eval block gives mIoU {measured:.4f}, below {EVAL_FLOOR}"
    assert abs(measured - float(quoted.group(1))) < 0.0015, (
        f"the README quotes mIoU {quoted.group(1)} for its eval block; it gives {measured:.4f}"
    )
