#!/usr/bin/env python3
"""Make the `tensorrt-stubs` wheel's .pyi files usable by mypy, so our TensorRT code is really type-checked.

TensorRT itself cannot be installed where CI runs, but the `tensorrt-stubs` package (generated from the
pybind11 module) describes its Python API. As shipped, its stubs do not parse:

* parameters named ``in`` (a keyword) in the plugin interfaces,
* a parameter without a default after defaulted ones (``INetworkDefinition.add_scale_nd``),
* ``import tensorrt_libs``, a wheel that only exists next to a real TensorRT install,
* ``typing_extensions.Buffer`` used without importing ``typing_extensions``.

This script copies the ``tensorrt`` and ``tensorrt_bindings`` stub packages from SOURCE (a
``pip install --no-deps --target SOURCE tensorrt-stubs`` directory) to DEST, fixes exactly those
problems, and fails loudly if the result still does not parse, so a new stubs release that breaks in a
new way stops CI instead of silently turning TensorRT into ``Any``. mypy reads DEST through
``mypy_path`` in setup.cfg; errors *inside* the stubs are silenced there, errors in our calls are not.

Usage: patch_tensorrt_stubs.py SOURCE DEST
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

PACKAGES = ("tensorrt", "tensorrt_bindings")
_DEF = re.compile(r"^(?P<head>\s*def \w+\()(?P<params>.*)(?P<tail>\)\s*(->.*)?:\s*)$")
_IN_PARAM = re.compile(r"^in(\s*:)")


def _split_params(params: str) -> list[str]:
    """Split a parameter list on top-level commas (annotations may contain brackets)."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(params):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    parts.append(params[start:])
    return parts


def _fix_params(params: str) -> str:
    """Rename `in` parameters and give `= ...` to non-default parameters that follow defaulted ones."""
    fixed: list[str] = []
    seen_default = False
    for raw in _split_params(params):
        lead = raw[: len(raw) - len(raw.lstrip())]
        param = raw.strip()
        param = _IN_PARAM.sub(r"in_\1", param)
        if param.startswith("*"):
            seen_default = False  # keyword-only parameters may legally lack defaults
        elif param in ("", "/"):
            pass
        elif "=" in param:
            seen_default = True
        elif seen_default:
            # Keeps the parameter (and its type) but makes the signature legal; looser than the C++ API.
            param = f"{param} = ..."
        fixed.append(lead + param)
    return ",".join(fixed)


def patch_source(text: str) -> str:
    """Return the stub text with the known syntax and import problems fixed."""
    out: list[str] = []
    for line in text.split("\n"):
        if re.match(r"^\s*import tensorrt_libs\b", line):
            continue  # only exists beside a real TensorRT install; nothing in our code needs it
        match = _DEF.match(line)
        if match:
            line = match.group("head") + _fix_params(match.group("params")) + match.group("tail")
        out.append(line)
        if line == "import typing":
            out.append("import typing_extensions")  # the stubs use typing_extensions.Buffer without importing it
    patched = "\n".join(out)
    return patched.replace("'tensorrt_libs', ", "").replace(", 'tensorrt_libs'", "")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(__doc__ or "")
        return 2
    source, dest = Path(argv[1]), Path(argv[2])
    missing = [p for p in PACKAGES if not (source / p).is_dir()]
    if missing:
        sys.stderr.write(f"patch_tensorrt_stubs: {source} has no {', '.join(missing)}; install tensorrt-stubs there\n")
        return 1
    if dest.exists():
        shutil.rmtree(dest)
    failures = []
    for package in PACKAGES:
        for stub in sorted((source / package).rglob("*.pyi")):
            target = dest / stub.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = patch_source(stub.read_text(encoding="utf-8"))
            try:
                ast.parse(text, filename=str(target), feature_version=(3, 10))
            except SyntaxError as exc:
                failures.append(f"{target}:{exc.lineno}: {exc.msg}")
            target.write_text(text, encoding="utf-8")
    if failures:
        sys.stderr.write("patch_tensorrt_stubs: patched stubs still do not parse:\n  " + "\n  ".join(failures) + "\n")
        return 1
    sys.stdout.write(f"patch_tensorrt_stubs: wrote parseable TensorRT stubs to {dest}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
