"""Which bags `process INPUT... OUT` reads, and where each one's output goes.

The rule (also in `process --help` and the README):
* exactly one INPUT that is a bag (a rosbag2 directory, a .mcap / .db3 file or a ROS 1 .bag) and no pattern: OUT is
  the output bag, as it always was;
* otherwise (several INPUTs, a directory tree, or a quoted glob such as 'drives/**/*.mcap') OUT is an
  output root, and each bag's output is mirrored under it: a bag named on the command line goes to
  OUT/<its name>, a bag found in a tree to OUT/<its path inside the tree>, a glob match to
  OUT/<its path below the pattern's fixed prefix>; a bare .mcap / .db3 / .bag file's output drops the suffix.

Every refusal (nothing found, a bag named twice, two bags writing one output, an output over an input,
an existing output without --force, an output root holding anything this run does not write, even with
--force, since the new outputs would mix with it) is one BagInputError line, raised before any model is
loaded and before anything is written.
"""

from __future__ import annotations

import fcntl
import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seg_perception.bag.bag_io import check_output_path
from seg_perception.core.errors import SegPerceptionError

STORAGE_SUFFIXES = (".mcap", ".db3")  # rosbag2 storage files; a directory holding one is a recording
BAG_FILE_SUFFIXES = (*STORAGE_SUFFIXES, ".bag")  # files that are bags by themselves (.bag: ROS 1)
GLOB_MAGIC = frozenset("*?[")
STAGING_PREFIX = ".process.partial-"  # a multi-bag run's staging directory in the output root (fleet_runner)
# Inside a staging directory: the file its run holds an exclusive flock on for the run's life (fleet_runner).
STAGING_LOCK = ".lock"


class BagInputError(SegPerceptionError):
    """The INPUT... OUT arguments of `process` name no bags, or name them in a way that cannot be honoured."""


@dataclass(frozen=True)
class BagJob:
    """One input bag and the output bag it becomes."""

    in_bag: Path
    out_bag: Path


@dataclass(frozen=True)
class BagPlan:
    """What a `process` command line asks for: its bags, and whether OUT is one bag or a root."""

    jobs: tuple[BagJob, ...]
    out: Path
    single: bool  # OUT is the output bag of the one INPUT (the original `process IN_BAG OUT_BAG`)
    stale: tuple[Path, ...] = ()  # a killed run's staging directories in the root, removed by --force
    busy: tuple[Path, ...] = ()  # staging of a process running now (its lock held): never removed


def staging_locked(staging: Path) -> bool:
    """Whether a running process holds the lock of this staging directory (a killed run's lock is free)."""
    try:
        fd = os.open(staging / STAGING_LOCK, os.O_RDONLY)
    except OSError:
        return False  # no lock file: a killed run's staging
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock this probe may have taken
    return False


def is_pattern(text: str) -> bool:
    return any(ch in GLOB_MAGIC for ch in text)


def _holds_own_recording(directory: Path, files: list[str]) -> bool:
    """metadata.yaml, or storage files named as rosbag2 names a bag's (<dir>.mcap, <dir>_0.db3): a
    recording, perhaps one whose metadata.yaml is missing (reading it then says so)."""
    if "metadata.yaml" in files:
        return True
    name = directory.name
    return any(
        Path(f).suffix in STORAGE_SUFFIXES and (Path(f).stem == name or Path(f).stem.startswith(f"{name}_"))
        for f in files
    )


def looks_like_bag(path: Path) -> bool:
    """A bag file, a recording directory (see _holds_own_recording), or a path that does not exist; any
    other directory is a tree of bags."""
    if not path.exists() or path.is_file():
        return True
    return _holds_own_recording(path, [p.name for p in path.iterdir() if p.is_file()])


def _bag_name(path: Path) -> str:
    return path.stem if path.is_file() and path.suffix in BAG_FILE_SUFFIXES else path.name


def bags_in_tree(root: Path) -> list[Path]:
    """Every recording directory (not descended into) and every other .mcap / .db3 / .bag file below `root`, sorted."""
    found: list[Path] = []
    for current, dirs, files in os.walk(root, followlinks=True):
        here = Path(current)
        if here != root and _holds_own_recording(here, files):
            found.append(here)
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # staging directories are hidden
        found.extend(here / f for f in sorted(files) if Path(f).suffix in BAG_FILE_SUFFIXES)
    return sorted(found)


def _relative_output(bag: Path, base: Path) -> Path:
    rel = bag.relative_to(base)
    return rel.with_suffix("") if bag.is_file() and bag.suffix in BAG_FILE_SUFFIXES else rel


def _pattern_base(pattern: str) -> Path:
    """The pattern's fixed leading directories ('drives/2024/*/*.mcap' -> drives/2024)."""
    parts = Path(pattern).parts
    fixed = parts[: next((i for i, p in enumerate(parts) if is_pattern(p)), len(parts))]
    return Path(*fixed) if fixed else Path(".")


def _expand(text: str, out: Path) -> list[tuple[Path, Path]]:
    """(input bag, its output path under the root `out`) for one INPUT argument."""
    path = Path(text)
    if is_pattern(text):
        base = _pattern_base(text)
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        if not matches:
            raise BagInputError(f"INPUT {text!r} matches nothing")
        pairs: list[tuple[Path, Path]] = []
        for match in matches:
            if looks_like_bag(match):
                pairs.append((match, out / _relative_output(match, base)))
            else:
                pairs.extend((bag, out / _relative_output(bag, base)) for bag in bags_in_tree(match))
        return pairs
    if not path.exists():
        raise BagInputError(f"INPUT {path} does not exist")
    if looks_like_bag(path):
        return [(path, out / _bag_name(path))]
    bags = bags_in_tree(path)
    if not bags:
        raise BagInputError(f"no bags (directories with metadata.yaml, or .mcap / .db3 / .bag files) under {path}")
    return [(bag, out / _relative_output(bag, path)) for bag in bags]


def _inside(path: Path, other: Path) -> bool:
    """`path` is `other` or lies below it (both resolved)."""
    return path == other or other in path.parents


def _check_collisions(pairs: Sequence[tuple[Path, Path]]) -> None:
    by_input: dict[Path, Path] = {}
    by_output: dict[Path, Path] = {}
    for in_bag, out_bag in pairs:
        src, dst = in_bag.resolve(), out_bag.resolve()
        if src in by_input:
            raise BagInputError(f"bag {in_bag} is named twice (also as {by_input[src]}); name each bag once")
        if dst in by_output:
            raise BagInputError(f"bags {by_output[dst]} and {in_bag} would both write {out_bag}; rename one")
        by_input[src], by_output[dst] = in_bag, in_bag
    inputs = [p.resolve() for p, _ in pairs]
    for _, out_bag in pairs:
        dst = out_bag.resolve()
        for src, (original, _) in zip(inputs, pairs, strict=True):
            if _inside(src, dst) or _inside(dst, src):
                raise BagInputError(f"output bag {out_bag} would overwrite, or lie inside, the input bag {original}")


def _foreign_entries(root: Path, outputs: Sequence[Path], own_files: Sequence[Path] = ()) -> list[Path]:
    """What the output root holds besides this run's output bags, the directories leading to them and the
    command's own files (its --summary) (sorted; output bags are not descended into): anything found here
    would end up mixed with the new outputs (core/output_rule.py: new outputs never mix with old ones)."""
    if not root.is_dir():
        return []
    wanted = {o.resolve() for o in outputs}
    own = {f.resolve() for f in own_files}
    leading = {parent for o in wanted for parent in o.parents}
    foreign: list[Path] = []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        for name in sorted(dirs):
            resolved = (here / name).resolve()
            if resolved not in wanted and resolved not in leading:
                foreign.append(here / name)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() in leading)
        foreign.extend(here / f for f in sorted(files) if (here / f).resolve() not in wanted | own)
    return sorted(foreign)


def _stale_staging(root: Path) -> list[Path]:
    """The staging directories a killed multi-bag run left in the root (fleet_runner makes them there)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(STAGING_PREFIX) and p.is_dir() and not p.is_symlink())


def plan_bags(inputs: Sequence[str], out: Path, force: bool, summary: Path | None = None) -> BagPlan:
    """Expand INPUT... into jobs by the rule of this module's docstring, refusing what cannot be honoured.
    `summary` (the command's --summary file) may lie in the output root; a killed run's staging there is
    refused without --force and listed in the plan for removal with it."""
    if not inputs:
        raise BagInputError("process needs INPUT... OUT: at least one input bag, directory or glob, then OUT")
    single = len(inputs) == 1 and not is_pattern(inputs[0]) and looks_like_bag(Path(inputs[0]))
    if single:
        check_output_path(out, force, inputs=[Path(inputs[0])])  # today's single-bag rule, as `process` had it
        return BagPlan((BagJob(Path(inputs[0]), out),), out, single=True)
    if (out / "metadata.yaml").is_file() or out.is_file():
        raise BagInputError(f"OUT {out} is a bag, but with several inputs, a tree or a glob OUT is an output root")
    pairs = [pair for text in inputs for pair in _expand(text, out)]
    _check_collisions(pairs)
    root = out.resolve()
    for text in inputs:  # a second run would find the first run's outputs among its inputs
        tree = Path(text)
        if not is_pattern(text) and not looks_like_bag(tree) and _inside(root, tree.resolve()):
            raise BagInputError(f"output root {out} lies inside the input tree {tree}; choose an OUT outside it")
    for in_bag, _ in pairs:
        if _inside(in_bag.resolve(), root):
            raise BagInputError(f"input bag {in_bag} lies inside the output root {out}; choose an OUT outside it")
    existing = [o for _, o in pairs if o.exists() or o.is_symlink()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise BagInputError(f"output bag {existing[0]} exists{more}; pass --force to replace it")
    staging = _stale_staging(out)
    busy = [p for p in staging if staging_locked(p)]
    stale = [p for p in staging if p not in busy]
    if stale and not force:
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise BagInputError(
            f"output root {out} holds {stale[0]}{more}, the staging directory of an interrupted run; "
            "pass --force to remove it"
        )
    own = [summary] if summary is not None else []
    foreign = [p for p in _foreign_entries(out, [o for _, o in pairs], own) if p not in staging]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise BagInputError(
            f"output root {out} holds {foreign[0]}{more}, which this run does not write: its outputs would mix "
            "with it (--force replaces only this run's bags); choose a new or empty OUT"
        )
    return BagPlan(tuple(BagJob(i, o) for i, o in pairs), out, single=False, stale=tuple(stale), busy=tuple(busy))
