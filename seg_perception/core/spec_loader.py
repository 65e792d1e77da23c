"""Loading a model spec from disk: read the YAML, validate it, then check it against the ONNX file it names.

Kept apart from `model_spec` (the schema and its parser) so the import graph has no circle: `onnx_checks`
needs the spec's types, and the loader needs `onnx_checks`; both point down to `model_spec`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.model_spec import ModelSpec, parse_model_spec
from seg_perception.core.onnx_checks import check_spec_against_onnx


def load_model_spec(path: str | Path, check_onnx: bool = True) -> ModelSpec:
    """Read, validate and (by default) check a spec against the ONNX model it names."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelSpecError(f"cannot read model spec {path}: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelSpecError(f"model spec {path} is not valid YAML: {exc}") from exc
    try:
        spec = parse_model_spec(raw, path.resolve().parent, spec_path=path.resolve())
    except ModelSpecError as exc:
        raise ModelSpecError(f"{path}: {exc}") from exc
    if check_onnx:
        try:
            check_spec_against_onnx(spec)
        except ModelSpecError as exc:
            raise ModelSpecError(f"{path}: {exc}") from exc
    return spec
