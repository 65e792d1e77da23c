"""The minimum versions we declare are the ones CI proves (constraints-oldest.txt, `make test-oldest`)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


OLDEST = _pins(ROOT / "constraints-oldest.txt")


def test_python_requires_is_the_python_ci_tests_on() -> None:
    assert re.search(r'python_requires=">=3\.10"', (ROOT / "setup.py").read_text())
    assert "3.10.*/bin/python3.10" in (ROOT / "Makefile").read_text()
    assert "make test-oldest" in (ROOT / ".ci" / "run").read_text()


def test_readme_states_the_proven_minimums() -> None:
    readme = (ROOT / "docs" / "getting-started.md").read_text()
    (line,) = [p for p in readme.split("\n\n") if p.startswith("What was verified where")]
    text = " ".join(line.split())
    opencv = ".".join(OLDEST["opencv-python-headless"].split(".")[:2])
    for claim in (
        "Python 3.10",
        f"numpy {OLDEST['numpy']}",
        f"OpenCV {opencv}",
        f"onnx {OLDEST['onnx']}",
        f"onnxruntime {OLDEST['onnxruntime']}",
    ):
        assert claim in text, f"docs/getting-started.md Supported platforms should declare {claim!r}: {text}"


def test_ros_install_requirements_do_not_go_below_the_proven_minimums() -> None:
    lines = (ROOT / "requirements-ros.txt").read_text().splitlines()
    for name in ("onnx", "onnxruntime", "rosbags", "numpy"):
        (spec,) = [line for line in lines if re.match(rf"{name}[><=]", line)]
        assert f">={OLDEST[name]}" in spec, f"requirements-ros.txt: {spec!r}, CI proves {name} {OLDEST[name]}"
