"""Resolve every package.xml dependency key for Humble, Jazzy, Kilted and Lyrical from a ros/rosdistro checkout.

    python tools/gen_rosdep_keys.py ROSDISTRO_GIT_DIR [--rev master] [--out .ci/rosdep_keys.json]

Reads, at one revision of ros/rosdistro (a bare mirror works: files are read with `git show`), the rule files
rosdep/base.yaml and rosdep/python.yaml for system keys, and each <distro>/distribution.yaml for ROS packages,
on the Ubuntu release each distribution names in release_platforms (Lyrical names none: Debian trixie there).
Writes the table test/test_package_xml_rosdep_keys.py checks package.xml against. Run by hand; not by make.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
DISTROS = ("humble", "jazzy", "kilted", "lyrical")
RULE_FILES = ("rosdep/base.yaml", "rosdep/python.yaml")


def _show(git_dir: str, rev: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", git_dir, "show", f"{rev}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def package_keys(package_xml: Path) -> list[str]:
    """Every dependency key of package.xml, as rosdep reads it (catkin_pkg)."""
    pkg = parse_package(str(package_xml))
    groups = (
        pkg.buildtool_depends,
        pkg.build_depends,
        pkg.build_export_depends,
        pkg.exec_depends,
        pkg.test_depends,
        pkg.doc_depends,
    )
    return sorted({d.name for group in groups for d in group})


def platform_of(distribution: dict[str, Any]) -> tuple[str, str]:
    """(os, release) rosdep resolves on: the distribution's Ubuntu release, else its first Debian one."""
    platforms = distribution.get("release_platforms", {})
    for os_name in ("ubuntu", "debian"):
        if platforms.get(os_name):
            return os_name, str(platforms[os_name][0])
    raise ValueError(f"no Ubuntu or Debian release in release_platforms: {sorted(platforms)}")


def resolve_rule(rule: Any, os_name: str, release: str) -> dict[str, Any]:
    """What a rosdep rule installs on os/release: {'apt': [...]}, {'pip': [...]}, or {'missing': reason}."""
    by_os = rule.get(os_name) if isinstance(rule, dict) else None
    if by_os is None:
        return {"missing": f"no {os_name} rule"}
    if isinstance(by_os, dict) and not ({"pip", "apt", "packages"} & set(by_os)):
        by_os = by_os.get(release, by_os.get("*"))
        if by_os is None:
            return {"missing": f"no {os_name} {release} rule"}
    if isinstance(by_os, list):
        return {"apt": by_os}
    if isinstance(by_os, dict) and "pip" in by_os:
        return {"pip": by_os["pip"].get("packages", [])}
    if isinstance(by_os, dict) and "apt" in by_os:
        return {"apt": by_os["apt"].get("packages", [])}
    if isinstance(by_os, dict) and "packages" in by_os:
        return {"apt": by_os["packages"]}
    return {"missing": f"unreadable {os_name} {release} rule: {by_os!r}"}


def released_packages(distribution: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Package name -> (repository, release version) of every package the distribution releases."""
    out: dict[str, tuple[str, str]] = {}
    for repo, entry in distribution.get("repositories", {}).items():
        release = entry.get("release")
        if not release or not release.get("version"):
            continue
        for name in release.get("packages", [repo]):
            out[name] = (repo, str(release["version"]))
    return out


def build_table(git_dir: str, rev: str, package_xml: Path) -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "-C", git_dir, "log", "-1", "--format=%H %cI", rev], check=True, capture_output=True, text=True
    ).stdout.split()
    rules: dict[str, tuple[str, Any]] = {}
    for path in RULE_FILES:
        for key, rule in yaml.safe_load(_show(git_dir, rev, path)).items():
            rules[key] = (path, rule)
    keys = package_keys(package_xml)
    distros: dict[str, Any] = {}
    for name in DISTROS:
        distribution = yaml.safe_load(_show(git_dir, rev, f"{name}/distribution.yaml"))
        os_name, release = platform_of(distribution)
        released = released_packages(distribution)
        resolved: dict[str, Any] = {}
        for key in keys:
            if key in released:
                repo, version = released[key]
                resolved[key] = {"source": f"{name}/distribution.yaml", "repository": repo, "version": version}
            elif key in rules:
                path, rule = rules[key]
                resolved[key] = {"source": path, **resolve_rule(rule, os_name, release)}
            else:
                resolved[key] = {"missing": f"neither released in {name}/distribution.yaml nor a key of the rule files"}
        distros[name] = {"platform": f"{os_name} {release}", "keys": resolved}
    return {
        "generated": datetime.now(timezone.utc).date().isoformat(),
        "rosdistro": {"repository": "https://github.com/ros/rosdistro", "commit": commit[0], "committed": commit[1]},
        "read": [*RULE_FILES, *(f"{d}/distribution.yaml" for d in DISTROS)],
        "distributions": distros,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("git_dir", help="a ros/rosdistro clone or mirror")
    parser.add_argument("--rev", default="master")
    parser.add_argument("--out", type=Path, default=ROOT / ".ci" / "rosdep_keys.json")
    args = parser.parse_args()
    table = build_table(args.git_dir, args.rev, ROOT / "package.xml")
    args.out.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")


if __name__ == "__main__":
    main()
