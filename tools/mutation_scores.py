"""Per-module mutation scores from mutmut's results, with the mutants judged equivalent taken out.

Run after `mutmut run` (``make mutation`` does) with the same patterns: it reads mutmut's per-file results
(``mutants/**/*.py.meta``; statuses as mutmut itself names them), the list in tools/equivalent_mutants.txt,
and updates the entries of the modules the patterns select in tools/mutation_scores.json (the others stay as
measured before). Score = killed / (mutants - equivalent): a timeout or a mutant no test reaches is not a kill.
Exit 1 when a listed equivalent mutant of the selected modules was killed (the list is stale) or some mutant
was not checked. `--table` prints the per-module table, a total row per package over its measured modules,
and the modules setup.cfg's [mutmut] source_paths mutates that have no entry yet; `--write-docs` writes the
same into README.md and docs/mutation-testing.md (a test checks they match tools/mutation_scores.json).
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import fnmatch
import importlib.metadata
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tools" / "equivalent_mutants.txt"
SCORES = ROOT / "tools" / "mutation_scores.json"
# The files that hold the scores block (scores_block below) between these two lines; --write-docs rewrites it.
DOCS = (ROOT / "README.md", ROOT / "docs" / "mutation-testing.md")
BEGIN, END = "<!-- mutation-scores: begin (tools/mutation_scores.py --write-docs) -->", "<!-- mutation-scores: end -->"


def module_of(mutant: str) -> str:
    """seg_perception.core.metrics.x_label_space__mutmut_3 -> seg_perception.core.metrics."""
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def read_statuses(mutants_dir: Path) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code  # here: the tables below need no mutmut (make test reads them)

    statuses: dict[str, str] = {}
    for meta in mutants_dir.glob("**/*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            statuses[name] = status_by_exit_code[code]
    return statuses


def read_equivalent(path: Path) -> dict[str, str]:
    """`<mutant name>  <reason>` per line; # comments and blank lines skipped; a reason is required."""
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, reason = line.strip().partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path}:{number}: {name} has no reason")
        listed[name] = reason.strip()
    return listed


def source_file(module: str) -> str:
    """seg_perception.core.metrics -> core/metrics.py (as the tables name it)."""
    return module.removeprefix("seg_perception.").replace(".", "/") + ".py"


def markdown_table(data: dict) -> str:
    """The per-module table of docs/mutation-testing.md, from tools/mutation_scores.json."""
    lines = [
        "| module | mutants | killed | equivalent | survived | no test / timeout | not checked | score | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for module, e in data["modules"].items():
        lines.append(
            f"| `{source_file(module)}` | {e['mutants']} | {e['killed']} | {e['equivalent']} | {e['survived']} | "
            f"{e['no_tests']} / {e['timeout']} | {e['other']} | {e['score_percent']} % | {e['date']} |"
        )
    return "\n".join(lines) + "\n"


def _score(killed: int, mutants: int, equivalent: int) -> float:
    return round(100.0 * killed / max(mutants - equivalent, 1), 1)


def package_table(data: dict, mutated: list[str] | None = None) -> str:
    """One row per package (core/, evaluation/, ...): the modules measured so far summed, and how many of the
    package's mutated modules (setup.cfg's source_paths) that is."""
    lines = [
        "| package | modules measured | mutants | killed | equivalent | survived | no test / timeout | not checked | "
        "score |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    in_package = Counter(m.split(".")[1] for m in (mutated_modules() if mutated is None else mutated))
    packages: dict[str, Counter[str]] = {}
    for module, e in data["modules"].items():
        total = packages.setdefault(module.split(".")[1], Counter())
        total["modules"] += 1
        total.update({k: e[k] for k in ("mutants", "killed", "equivalent", "survived", "no_tests", "timeout", "other")})
    for package, t in sorted(packages.items()):
        score = _score(t["killed"], t["mutants"], t["equivalent"])
        of = max(in_package[package], t["modules"])
        lines.append(
            f"| `{package}/` | {t['modules']} of {of} | {t['mutants']} | {t['killed']} | {t['equivalent']} | "
            f"{t['survived']} | {t['no_tests']} / {t['timeout']} | {t['other']} | {score} % |"
        )
    return "\n".join(lines) + "\n"


def scores_block(data: dict) -> str:
    """What README.md and docs/mutation-testing.md hold between BEGIN and END: the per-module table, the
    per-package table and the modules not measured yet."""
    missing = [source_file(m) for m in unmeasured_modules(data)]
    return (
        markdown_table(data)
        + "\n"
        + package_table(data)
        + "\nNot measured yet: "
        + (", ".join(f"`{m}`" for m in missing) or "none")
        + ".\n"
    )


def with_block(text: str, block: str) -> str:
    """`text` with what lies between its BEGIN and END lines replaced by `block`."""
    head, begin, rest = text.partition(BEGIN + "\n")
    _old, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"mutation_scores: no {BEGIN!r} ... {END!r} lines to write the scores between")
    return head + begin + "\n" + block + "\n" + end + tail


def mutated_modules(setup_cfg: Path = ROOT / "setup.cfg") -> list[str]:
    """Every module `source_paths` in setup.cfg's [mutmut] section names (a folder: its .py files but
    __init__.py), as import paths."""
    config = configparser.ConfigParser()
    config.read(setup_cfg)
    modules = []
    for entry in config["mutmut"]["source_paths"].split():
        path = ROOT / entry
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        modules += [".".join(f.relative_to(ROOT).with_suffix("").parts) for f in files if f.name != "__init__.py"]
    return modules


def unmeasured_modules(data: dict) -> list[str]:
    """The modules setup.cfg mutates that have no row in the scores file yet."""
    return [m for m in mutated_modules() if m not in data["modules"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", help="the mutant-name patterns given to mutmut run")
    parser.add_argument("--command", default="", help="the command that measured them, for the record")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of the scores file and stop")
    parser.add_argument(
        "--write-docs", action="store_true", help="write those tables into README.md and docs/mutation-testing.md"
    )
    args = parser.parse_args()
    if args.table or args.write_docs:
        block = scores_block(json.loads(SCORES.read_text()))
        if args.table:
            sys.stdout.write(block)
        for path in DOCS if args.write_docs else ():
            path.write_text(with_block(path.read_text(encoding="utf-8"), block), encoding="utf-8")
        return 0
    if not args.patterns:
        parser.error("give the mutant-name patterns given to mutmut run")
    statuses = read_statuses(ROOT / "mutants")
    equivalent = read_equivalent(EQUIVALENT)
    selected = {n: s for n, s in statuses.items() if any(fnmatch.fnmatchcase(n, p) for p in args.patterns)}
    problems = [
        f"{n}: listed as equivalent but {selected[n]}" for n in equivalent if selected.get(n, "survived") != "survived"
    ]
    modules: dict[str, Counter[str]] = {}
    for name, status in selected.items():
        if status == "survived" and name in equivalent:
            status = "equivalent"
        modules.setdefault(module_of(name), Counter())[status] += 1
    unmeasured = [m for m, c in modules.items() if c["not checked"]]
    problems += [f"{m}: {modules[m]['not checked']} mutants not checked (run mutmut first)" for m in unmeasured]
    data = json.loads(SCORES.read_text()) if SCORES.exists() else {"modules": {}}
    data["definition"] = "score = killed / (mutants - equivalent); equivalent ones are in tools/equivalent_mutants.txt"
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    for module, counts in sorted(modules.items()):
        total = sum(counts.values())
        entry = {
            "mutants": total,
            "killed": counts["killed"],
            "survived": counts["survived"],
            "equivalent": counts["equivalent"],
            "timeout": counts["timeout"],
            "no_tests": counts["no tests"],
            "other": total - sum(counts[k] for k in ("killed", "survived", "equivalent", "timeout", "no tests")),
            "score_percent": _score(counts["killed"], total, counts["equivalent"]),
            "date": today,
            "mutmut": importlib.metadata.version("mutmut"),
            "command": args.command or "mutmut run " + " ".join(repr(p) for p in args.patterns),
        }
        data["modules"][module] = entry
        sys.stdout.write(
            f"{module}: {entry['killed']} killed, {entry['survived']} survived, {entry['equivalent']} equivalent, "
            f"{entry['timeout']} timeout, {entry['no_tests']} no tests: {entry['score_percent']} %\n"
        )
    for name in sorted(n for n, s in selected.items() if s == "survived" and n not in equivalent):
        sys.stdout.write(f"  survived: {name}  (.venv-mutation/bin/mutmut show {name})\n")
    data["modules"] = dict(sorted(data["modules"].items()))
    SCORES.write_text(json.dumps(data, indent=2) + "\n")
    for line in problems:
        sys.stderr.write(f"mutation_scores: {line}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
