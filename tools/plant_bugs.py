"""Dev-only mutation check: plant known bugs one at a time in scratch copies and report which tests catch each.

Each bug is a small textual patch anchored on code lines; a missing anchor stops that bug with an error naming
the anchor (the code moved: update the patch here), it never passes silently. `--check --worktree` (patches
in memory, no test run) is part of `make test` (test/test_plant_bugs_anchors.py), so a stale anchor fails the
suite. For each bug the script extracts `git archive REF` into a scratch directory, applies the patch, and runs
the bug's test files there with this repository's `.venv` interpreter (PYTHONPATH points at the scratch copy,
so the planted code is what gets imported, by the tests and by the node processes they start). A test counts as
catching a bug when it fails with the bug planted and passed in an unplanted copy (the baseline run).

    .venv/bin/python tools/plant_bugs.py                      # every bug, JSON to $TMPDIR/plant_bugs.json
    .venv/bin/python tools/plant_bugs.py --bugs b,d --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from planted_bugs import BUGS, Bug  # noqa: E402 - the table, beside this script


class PlantError(RuntimeError):
    """An anchor of a patch is missing or ambiguous."""


def patched_texts(read: Callable[[str], str | None], bug: Bug) -> tuple[dict[str, str], list[str]]:
    """The patched text of each file `bug` changes, reading the unpatched files with `read` (None: no such
    file), and 'path: anchor' of each applied edit. Raises PlantError."""
    texts: dict[str, str] = {}
    applied = []
    for alternatives in bug.changes:
        tried = []
        for edit in alternatives:
            if edit.path not in texts:
                texts[edit.path] = read(edit.path) or ""
            text = texts[edit.path]
            count = len(re.findall(edit.old, text)) if edit.regex else text.count(edit.old)
            tried.append(f"{edit.path}: {count} x {edit.old.strip()[:70]!r}")
            if count == 1:
                if edit.regex:
                    text = re.sub(edit.old, edit.new.replace("\\", "\\\\"), text)  # literal replacement
                else:
                    text = text.replace(edit.old, edit.new)
                try:
                    compile(text, edit.path, "exec")
                except SyntaxError as exc:
                    raise PlantError(f"bug {bug.key}: the patched {edit.path} does not compile: {exc}") from None
                texts[edit.path] = text
                applied.append(f"{edit.path}: {edit.old.strip().splitlines()[0][:70]}")
                break
        else:
            raise PlantError(f"bug {bug.key}: no anchor found exactly once; tried " + "; ".join(tried))
    return texts, applied


def _reader(root: Path) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        return (root / path).read_text() if (root / path).exists() else None

    return read


def apply_bug(root: Path, bug: Bug) -> list[str]:
    """Patch the copy at `root`; returns 'path: anchor' of each applied edit. Raises PlantError."""
    texts, applied = patched_texts(_reader(root), bug)
    for path, text in texts.items():
        (root / path).write_text(text)
    return applied


def extract(ref: str, into: Path) -> None:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def present(root: Path, tests: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(test ids whose file, and test function when named, exist in the copy; those that do not)."""
    found: list[str] = []
    missing: list[str] = []
    for test in tests:
        (found if _test_exists(_reader(root), test) else missing).append(test)
    return found, missing


def _test_exists(read: Callable[[str], str | None], test: str) -> bool:
    path, _, function = test.partition("::")
    text = read(path)
    if text is None:
        return False
    return not function or re.search(rf"^def {re.escape(function.split('[')[0])}\(", text, re.MULTILINE) is not None


def run_tests(root: Path, tests: list[str], python: str, timeout: float) -> dict[str, Any]:
    """Run pytest in the copy; failed/errored test ids from its JUnit XML."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(root / "config" / "fastdds_large_data.xml")
    where = subprocess.run(
        [python, "-c", "import seg_perception; print(seg_perception.__file__)"],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    if not Path(where.stdout.strip()).resolve().is_relative_to(root.resolve()):
        raise PlantError(f"the scratch copy imports seg_perception from {where.stdout.strip()}, not from {root}")
    xml = root / "plant_bugs_junit.xml"
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *tests]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        code, tail = proc.returncode, (proc.stdout + proc.stderr)[-2000:]
    except subprocess.TimeoutExpired:
        code, tail = -1, f"timed out after {timeout} s"
    failed: list[str] = []
    total = 0
    if xml.exists():
        for case in ET.parse(xml).iter("testcase"):
            total += 1
            if case.find("failure") is not None or case.find("error") is not None:
                name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
                failed.append(name)
    return {"returncode": code, "tests": total, "failed": failed, "seconds": round(time.monotonic() - start, 1),
            "output_tail": tail}  # fmt: skip


def by_function(test_ids: list[str]) -> list[tuple[str, int]]:
    """Test ids grouped by test function (parameters dropped), in first-seen order, with their counts."""
    counts: dict[str, int] = {}
    for test in test_ids:
        name = test.split("[", 1)[0]
        counts[name] = counts.get(name, 0) + 1
    return list(counts.items())


@dataclass
class Report:
    ref: str
    commit: str
    baseline_failed: list[str] | None = None
    bugs: list[dict[str, Any]] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bugs", default=",".join(b.key for b in BUGS), help="comma-separated bug keys")
    p.add_argument("--ref", default="HEAD", help="git ref to copy (committed state only)")
    p.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"), help="interpreter with the deps")
    default_json = Path(tempfile.gettempdir()) / "plant_bugs.json"
    p.add_argument("--json", type=Path, default=default_json, help="where to write the JSON report")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per pytest run")
    p.add_argument("--no-baseline", action="store_true", help="skip the unplanted run (count every failure)")
    p.add_argument("--keep", action="store_true", help="keep the scratch copies")
    p.add_argument("--check", action="store_true", help="only apply each patch (anchors found?), run no test")
    p.add_argument("--worktree", action="store_true", help="with --check: check the working tree, not --ref")
    args = p.parse_args(argv)
    chosen = [b for b in BUGS if b.key in args.bugs.split(",")]
    if not chosen:
        p.error(f"--bugs {args.bugs!r} names none of {', '.join(b.key for b in BUGS)}")
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", args.ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    if args.check:
        return check_anchors(None if args.worktree else commit, chosen)
    report = Report(args.ref, commit)
    scratch = Path(tempfile.mkdtemp(prefix="plant_bugs_"))
    try:
        if not args.no_baseline:
            extract(commit, scratch / "baseline")
            union = sorted({t for b in chosen for t in b.tests})
            found, _ = present(scratch / "baseline", tuple(union))
            base = run_tests(scratch / "baseline", found, args.python, args.timeout)
            report.baseline_failed = list(base["failed"])
            sys.stderr.write(f"baseline: {base['tests']} tests, failed {base['failed']} ({base['seconds']} s)\n")
        for bug in chosen:
            root = scratch / f"bug_{bug.key}"
            extract(commit, root)
            entry: dict[str, Any] = {"key": bug.key, "title": bug.title, "control": bug.control}
            found, missing = present(root, bug.tests)
            entry["missing_test_files"] = missing
            try:
                entry["applied"] = apply_bug(root, bug)
            except PlantError as exc:
                entry.update(error=str(exc), caught=False, caught_by=[])
                report.bugs.append(entry)
                continue
            if not found:
                entry.update(error="none of its test files exist at this ref", caught=False, caught_by=[])
                report.bugs.append(entry)
                continue
            result = run_tests(root, found, args.python, args.timeout)
            baseline = set(report.baseline_failed or [])
            caught_by = [t for t in result["failed"] if t not in baseline]
            entry.update(result, tests_run=found, caught=bool(caught_by), caught_by=caught_by)
            report.bugs.append(entry)
            sys.stderr.write(f"bug {bug.key}: {len(caught_by)} new failures ({result['seconds']} s)\n")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    data = {"ref": report.ref, "commit": report.commit, "baseline_failed": report.baseline_failed,
            "bugs": report.bugs}  # fmt: skip
    tmp = args.json.with_name(args.json.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(args.json)
    lines = [f"plant_bugs at {args.ref} ({commit[:10]}); JSON in {args.json}"]
    if report.baseline_failed:
        lines.append(f"baseline (unplanted) failures, not counted: {', '.join(report.baseline_failed)}")
    lines.append(f"{'bug':<4}{'caught':<8}{'failed':>7}  {'title / caught by':<60}")
    for entry in report.bugs:
        caught_by = list(entry.get("caught_by", []))
        status = "yes" if entry["caught"] else ("ERROR" if "error" in entry else "NO")
        if entry["control"] and "error" not in entry:
            status = "yes?!" if entry["caught"] else "no (control, expected)"
        if len(status) > 7:  # a control's status gets a line of its own
            lines.append(f"{entry['key']:<4}{status}")
            lines.append(f"{'':<12}{len(caught_by):>7}  {entry['title']}")
        else:
            lines.append(f"{entry['key']:<4}{status:<8}{len(caught_by):>7}  {entry['title']}")
        if entry["control"] and entry["caught"]:
            lines.append(f"{'':<21}a control is an equivalent mutant: a test that fails on it is flaky")
        functions = by_function(caught_by)
        for name, count in functions[:6]:
            lines.append(f"{'':<21}{name}" + (f" ({count} cases)" if count > 1 else ""))
        if len(functions) > 6:
            lines.append(f"{'':<21}... and {len(functions) - 6} more test functions")
        if "error" in entry:
            lines.append(f"{'':<21}{entry['error']}")
        if entry.get("missing_test_files"):
            lines.append(f"{'':<21}test files not at this ref: {', '.join(entry['missing_test_files'])}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if all(e["caught"] != e["control"] and "error" not in e for e in report.bugs) else 1


def check_anchors(commit: str | None, bugs: list[Bug]) -> int:
    """Patch each bug in memory, running no test: its anchors found exactly once, the patched files compile,
    and its test files and functions exist; 1 when any is not. `commit` None: the working tree."""

    def read(path: str) -> str | None:
        if commit is None:
            return (REPO / path).read_text() if (REPO / path).exists() else None
        shown = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{path}"], capture_output=True, text=True)
        return shown.stdout if shown.returncode == 0 else None

    errors = 0
    for bug in bugs:
        missing = [t for t in bug.tests if not _test_exists(read, t)]
        try:
            _, applied = patched_texts(read, bug)
            line = f"{bug.key}: applies ({len(applied)} edits)"
        except PlantError as exc:
            errors += 1
            line = f"{bug.key}: ERROR {exc}"
        if missing:
            errors += 1
            line += f"; tests not at this ref: {', '.join(missing)}"
        sys.stdout.write(line + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
