"""Every package.xml dependency is a rosdep key that resolves on ROS 2 Kilted / Ubuntu 24.04.

The keys were checked by hand against ros/rosdistro's rule files on the date .ci/rosdep_keys_kilted.yaml
records (this machine has no rosdep database and no network at test time); this test keeps package.xml inside
that checked list, and keeps what rosdep cannot provide on the documented install step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
KEYS = yaml.safe_load((ROOT / ".ci" / "rosdep_keys_kilted.yaml").read_text())


def _dependency_keys() -> set[str]:
    package = parse_package(str(ROOT / "package.xml"))  # what rosdep itself parses package.xml with
    groups = (
        package.buildtool_depends,
        package.build_depends,
        package.build_export_depends,
        package.exec_depends,
        package.test_depends,
        package.doc_depends,
    )
    return {dependency.name for group in groups for dependency in group}


def test_checked_list_is_for_kilted_on_noble() -> None:
    assert KEYS["distro"] == "kilted" and KEYS["platform"] == "ubuntu noble" and KEYS["checked"]


def test_every_package_xml_key_was_checked() -> None:
    known = set(KEYS["system_keys"]) | set(KEYS["ros_packages"])
    unchecked = sorted(_dependency_keys() - known)
    assert not unchecked, f"package.xml names keys not checked against ros/rosdistro for Kilted: {unchecked}"


def test_system_keys_resolve_to_apt_packages_not_pip() -> None:
    for key, rule in KEYS["system_keys"].items():
        assert rule["rule_file"] in ("rosdep/python.yaml", "rosdep/base.yaml"), key
        assert not key.endswith("-pip") and rule["ubuntu"], f"{key}: a pip rule fails under PEP 668 on noble"


@pytest.mark.parametrize("name", sorted(KEYS["not_rosdep"]))
def test_what_rosdep_cannot_install_has_the_documented_step(name: str) -> None:
    assert not {k for k in _dependency_keys() if name in k}, f"package.xml names a key for {name}"
    requirements = (ROOT / "requirements-ros.txt").read_text().splitlines()
    assert any(line.startswith(f"{name}>=") for line in requirements), f"requirements-ros.txt does not install {name}"
    readme = (ROOT / "docs" / "getting-started.md").read_text()
    assert "pip install -r src/seg_perception/requirements-ros.txt" in readme
