"""Fixtures shared by the test modules: a tiny model spec and a Segmenter over it, an ASCII locale."""

from __future__ import annotations

import locale
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_models import TINY_CLASSES, tiny_spec

from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import Segmenter


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1x1-conv model over TINY_CLASSES and its spec (one per test module)."""
    return tiny_spec(tmp_path_factory.mktemp("model"), TINY_CLASSES)


@pytest.fixture(scope="module")
def segmenter(spec_path: Path) -> Iterator[Segmenter]:
    """The reference Segmenter the node's and the bag tools' outputs must equal."""
    with Segmenter(load_model_spec(spec_path), backend="onnxruntime") as seg:
        yield seg


@pytest.fixture
def ascii_locale() -> Iterator[str]:
    """The C locale's ASCII as the default text encoding (open() without encoding=), restored after."""
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield locale.getpreferredencoding(False)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
