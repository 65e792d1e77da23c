"""The mutation scores the README and docs/mutation-testing.md show are those of tools/mutation_scores.json,
and the package rows sum their modules with the documented formula (killed / (mutants - equivalent))."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mutation_scores", REPO / "tools" / "mutation_scores.py")
assert _spec is not None and _spec.loader is not None
scores = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scores)


def _entry(mutants: int, killed: int, equivalent: int, survived: int, other: int = 0) -> dict:
    return {
        "mutants": mutants,
        "killed": killed,
        "equivalent": equivalent,
        "survived": survived,
        "no_tests": 0,
        "timeout": 0,
        "other": other,
        "score_percent": 0.0,
        "date": "2026-12-07",
    }


def test_the_readme_and_the_docs_page_show_the_scores_file() -> None:
    block = scores.scores_block(json.loads((REPO / "tools" / "mutation_scores.json").read_text()))
    for page in scores.DOCS:
        text = page.read_text(encoding="utf-8")
        assert text.count(scores.BEGIN) == 1 and text.count(scores.END) == 1, page
        shown = text.split(scores.BEGIN + "\n", 1)[1].split(scores.END, 1)[0]
        assert shown == "\n" + block + "\n", f"{page.name}: run tools/mutation_scores.py --write-docs"


def test_a_package_row_sums_its_measured_modules_and_says_how_many_of_its_modules_that_is() -> None:
    data = {
        "modules": {
            "seg_perception.core.a": _entry(100, 80, 10, 10),
            "seg_perception.core.b": _entry(50, 40, 0, 5, other=5),
            "seg_perception.fleet.c": _entry(3, 1, 1, 1),
        }
    }
    mutated = ["seg_perception.core.a", "seg_perception.core.b", "seg_perception.core.z", "seg_perception.fleet.c"]
    rows = scores.package_table(data, mutated).splitlines()[2:]
    # core: 120 killed of 150 - 10 = 140 -> 85.7 %; fleet: 1 of 3 - 1 = 2 -> 50.0 %
    assert rows == [
        "| `core/` | 2 of 3 | 150 | 120 | 10 | 15 | 0 / 0 | 5 | 85.7 % |",
        "| `fleet/` | 1 of 1 | 3 | 1 | 1 | 1 | 0 / 0 | 0 | 50.0 % |",
    ]


def test_writing_the_block_replaces_only_what_lies_between_the_markers() -> None:
    page = f"intro\n{scores.BEGIN}\nold table\n{scores.END}\nafter\n"
    assert scores.with_block(page, "new\n") == f"intro\n{scores.BEGIN}\n\nnew\n\n{scores.END}\nafter\n"
