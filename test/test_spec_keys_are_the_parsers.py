"""The model-spec reference table (core/spec_keys.py, from which docs/reference/model-spec.md is generated)
is the parser's: every mapping `core/model_spec.py` reads while parsing the shipped specs allows exactly the
table's keys of that group and requires exactly those the table marks required."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from seg_perception.core import model_spec, spec_keys
from seg_perception.core.spec_keys import SPEC_KEYS
from seg_perception.core.spec_loader import load_model_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted([ROOT / "models" / "demo_road_seg.yaml", *(ROOT / "models" / "zoo").glob("*/spec.yaml")])


def _group(key: str) -> str:
    """`classes[3]` -> `classes[]`, `outputs[0]` -> `outputs[]`, `masks.drivable` -> `masks.<name>`."""
    key = re.sub(r"\[\d+\]$", "[]", key)
    return "masks.<name>" if key.startswith("masks.") else key


@pytest.fixture(scope="module")
def parsed_mappings() -> dict[str, tuple[set[str], set[str]]]:
    """(allowed, required) of every mapping the parser checked, by group, over all shipped specs."""
    seen: dict[str, tuple[set[str], set[str]]] = {}
    real = model_spec._mapping

    def recording(value: Any, key: str, allowed: Sequence[str], required: Sequence[str]) -> Mapping[str, Any]:
        entry = (set(allowed), set(required))
        assert seen.setdefault(_group(key), entry) == entry, f"{key}: the parser's keys differ between specs"
        return real(value, key, allowed, required)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_spec, "_mapping", recording)
        for path in SPECS:
            load_model_spec(path, check_onnx=False)
    return seen


def test_the_shipped_specs_reach_every_group_of_the_table(parsed_mappings: dict[str, Any]) -> None:
    assert len(SPECS) >= 10
    assert sorted(parsed_mappings) == sorted({k.group for k in SPEC_KEYS})


@pytest.mark.parametrize("group", sorted({k.group for k in SPEC_KEYS}))
def test_each_group_allows_and_requires_exactly_the_tables_keys(
    group: str, parsed_mappings: dict[str, tuple[set[str], set[str]]]
) -> None:
    allowed, required = parsed_mappings[group]
    rows = [k for k in SPEC_KEYS if k.group == group]
    assert sorted(k.key for k in rows) == sorted(allowed)
    assert sorted(k.key for k in rows if k.required) == sorted(required)
    assert len({k.key for k in rows}) == len(rows)


def test_a_closed_set_of_values_reads_one_of_each_in_backticks() -> None:
    # The table is built at import; _one_of itself is what the reference page's "allowed" column reads.
    assert spec_keys._one_of(("NCHW", "NHWC")) == "one of `NCHW`, `NHWC`"
    assert spec_keys._one_of(("stretch",)) == "one of `stretch`"
    assert [k.values for k in SPEC_KEYS if k.key == "layout"] == ["one of `NCHW`, `NHWC`"]
