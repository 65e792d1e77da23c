"""`process INPUT... OUT` over many bags in one process: the OUT rule, refusals, chunks, failures, summary."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fleet_bags import listing, metadata_text, process, read_bag, topics_metadata

from seg_perception.bag.offline_processing import process_bag
from seg_perception.fleet.bag_inputs import STAGING_LOCK, plan_bags
from seg_perception.fleet.chunk_merge import merge_chunk_bags
from seg_perception.fleet.work_units import chunk_ranges, inspect_bag
from seg_perception.pipeline import Segmenter
from seg_perception.synthetic.drive_bag import SyntheticCamera, write_synthetic_drive

W, H = 96, 64
FRONT = "/camera/front/image_raw"


@pytest.fixture(scope="module")
def drives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """drives/a (MCAP), drives/city/b (sqlite3, two JPEG cameras), drives/city/c.mcap (a bare MCAP file)."""
    root = tmp_path_factory.mktemp("fleet") / "drives"
    write_synthetic_drive(root / "a", 4, width=W, height=H, rate_hz=10, storage="mcap")
    cams = [SyntheticCamera(FRONT, compressed=True), SyntheticCamera("/camera/left/image_raw", compressed=True)]
    write_synthetic_drive(root / "city" / "b", 3, cams, W, H, rate_hz=10, seed=3, storage="sqlite3")
    write_synthetic_drive(root / "tmp_c", 5, width=W, height=H, rate_hz=10, seed=5, storage="mcap")
    (root / "tmp_c" / "tmp_c.mcap").rename(root / "city" / "c.mcap")
    for leftover in (root / "tmp_c").iterdir():
        leftover.unlink()
    (root / "tmp_c").rmdir()
    return root


def test_the_out_rule_mirrors_each_bag_under_the_root(drives: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    single = plan_bags([str(drives / "a")], out, force=False)
    assert single.single and [(j.in_bag, j.out_bag) for j in single.jobs] == [(drives / "a", out)]

    tree = plan_bags([str(drives)], out, force=False)
    assert not tree.single
    assert [(j.in_bag, j.out_bag) for j in tree.jobs] == [
        (drives / "a", out / "a"),
        (drives / "city" / "b", out / "city" / "b"),
        (drives / "city" / "c.mcap", out / "city" / "c"),
    ]
    named = plan_bags([str(drives / "a"), str(drives / "city" / "c.mcap")], out, force=False)
    assert [j.out_bag for j in named.jobs] == [out / "a", out / "c"]
    pattern = plan_bags([f"{drives}/**/*.mcap"], out, force=False)  # the bare file, and a's storage file
    assert [(j.in_bag, j.out_bag) for j in pattern.jobs] == [
        (drives / "a" / "a.mcap", out / "a" / "a"),
        (drives / "city" / "c.mcap", out / "city" / "c"),
    ]
    one_match = plan_bags([f"{drives}/ci*"], out, force=False)  # a glob makes OUT a root, even for one match
    assert [j.out_bag for j in one_match.jobs] == [out / "city" / "b", out / "city" / "c"]


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["{d}/a", "{d}/city/../a", "{t}/out"], "is named twice"),
        (["{d}/city/c.mcap", "{t}/other/c", "{t}/out"], "would both write"),
        (["{d}", "{d}/seg"], "lies inside the input tree"),
        (["{d}/city/b", "{d}/city/c.mcap", "{d}"], "lies inside the output root"),
        (["{d}/a", "{d}/city/b", "{d}/a"], "is a bag, but with several inputs"),
        (["{d}/nothing_*", "{t}/out"], "matches nothing"),
        (["{d}/a", "{d}/missing", "{t}/out"], "does not exist"),
        (["{t}/empty", "{t}/out"], "no bags"),
    ],
)
def test_ambiguous_or_colliding_command_lines_are_one_line_exit_2_before_the_model_loads(
    drives: Path,
    tmp_path: Path,
    spec_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    words: list[str],
    message: str,
) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "other" / "c").mkdir(parents=True)
    (tmp_path / "other" / "c" / "c.mcap").write_bytes(b"never read")
    monkeypatch.setattr(Segmenter, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    before = listing(drives)
    assert process(spec_path, *(w.format(d=drives, t=tmp_path) for w in words)) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and message in errors[0], errors
    assert listing(drives) == before
    assert not (tmp_path / "out").exists()


def test_existing_outputs_are_refused_without_force_and_replaced_with_it(
    drives: Path, tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    (out / "city" / "b").mkdir(parents=True)
    (out / "city" / "b" / "mine.txt").write_text("keep me")
    assert process(spec_path, str(drives), str(out)) == 2
    assert f"output bag {out / 'city' / 'b'} exists; pass --force" in caplog.text
    assert listing(out) == ["city", "city/b", "city/b/mine.txt"]
    assert process(spec_path, str(drives), str(out), "--force") == 0
    assert not (out / "city" / "b" / "mine.txt").exists()
    assert len(read_bag(out / "city" / "b")["/camera/left/segmentation/labels"]) == 3


STALE_STAGING = ".process.partial-k3j9/city/b/metadata.yaml"  # what a killed multi-bag run leaves in OUT


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize(
    "foreign",
    ["notes.txt", "old_drive/metadata.yaml", "city/old.mcap", STALE_STAGING, "summary.json"],
    ids=["file", "other_bag", "beside_a_bag", "stale_staging", "own_summary"],
)
def test_an_output_root_holding_other_things_is_refused_before_anything_is_written(
    drives: Path,
    tmp_path: Path,
    spec_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    foreign: str,
    force: bool,
) -> None:
    """New outputs never mix with old ones: a root holding anything this run would not write (an older
    run's other bags, a user's file) is one line and exit 2, --force or not (--force replaces this run's
    bags, it never deletes the rest of a root), and nothing is written or loaded. The command's own
    leftovers are not foreign: a killed run's staging is refused without --force and removed with it,
    and the file this command's --summary names is rewritten."""
    out = tmp_path / "out"
    (out / foreign).parent.mkdir(parents=True, exist_ok=True)
    (out / foreign).write_text("not this run's")
    before = listing(out)
    args = [str(drives), str(out), "--summary", str(out / "summary.json"), *(["--force"] if force else [])]
    if foreign == "summary.json" or (foreign == STALE_STAGING and force):
        assert process(spec_path, *args) == 0
        assert not [p for p in listing(out) if p.startswith(".process.partial-")]
        assert json.loads((out / "summary.json").read_text())["totals"]["done"] == 3
        assert len(read_bag(out / "city" / "b")["/camera/left/segmentation/labels"]) == 3
        return
    monkeypatch.setattr(Segmenter, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    assert process(spec_path, *args) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    if foreign == STALE_STAGING:
        staging = out / ".process.partial-k3j9"
        assert errors == [
            f"error: output root {out} holds {staging}, the staging directory of an interrupted run; "
            "pass --force to remove it"
        ], errors
        assert listing(out) == before
        return
    # the first foreign entry: the directory where it is not an output's parent, the file inside where it is
    named = out / foreign if foreign.startswith("city/") else out / Path(foreign).parts[0]
    assert errors == [
        f"error: output root {out} holds {named}, which this run does not write: its outputs would mix with it "
        "(--force replaces only this run's bags); choose a new or empty OUT"
    ], errors
    assert listing(out) == before


def test_many_bags_equal_one_process_per_bag_and_the_summary_counts_them(
    drives: Path, tmp_path: Path, spec_path: Path
) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    assert process(spec_path, str(drives), str(out), "--summary", str(summary)) == 0
    expected_frames = {"a": 4, "city/b": 6, "city/c": 5}  # b: 3 frames on each of two cameras
    for rel in expected_frames:
        src = drives / (rel + ".mcap" if rel == "city/c" else rel)
        assert process(spec_path, str(src), str(tmp_path / "one" / rel)) == 0
        assert read_bag(out / rel) == read_bag(tmp_path / "one" / rel), rel
        assert metadata_text(out / rel) == metadata_text(tmp_path / "one" / rel), rel
    assert listing(out) == listing(tmp_path / "one")  # nothing else: no staging directories
    report = json.loads(summary.read_text())
    assert [
        (b["input"], b["output"], b["status"], b["frames"], b["chunks"], b["attempts"], b["error"])
        for b in report["bags"]
    ] == [
        (str(drives / "a"), str(out / "a"), "done", 4, 1, 1, None),
        (str(drives / "city" / "b"), str(out / "city" / "b"), "done", 6, 1, 1, None),
        (str(drives / "city" / "c.mcap"), str(out / "city" / "c"), "done", 5, 1, 1, None),
    ]
    assert all(
        b["seconds"] > 0 and b["fps"] == pytest.approx(b["frames"] / b["seconds"], rel=1e-2) for b in report["bags"]
    )
    totals = report["totals"]
    assert (totals["bags"], totals["done"], totals["failed"], totals["frames"], totals["workers"], totals["ray"]) == (
        3,
        3,
        0,
        15,
        1,
        None,
    )


def test_a_corrupt_bag_fails_alone_is_listed_with_its_reason_and_exits_1(
    drives: Path, tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = write_synthetic_drive(tmp_path / "in" / "bad", 3, width=W, height=H, storage="sqlite3").path
    (bad / "bad.db3").write_bytes(b"not a bag at all " * 64)
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    assert (
        process(spec_path, str(drives / "a"), str(bad), str(drives / "city" / "b"), str(out), "--summary", str(summary))
        == 1
    )
    report = json.loads(summary.read_text())
    assert [(b["status"], b["output"]) for b in report["bags"]] == [
        ("done", str(out / "a")),
        ("failed", None),
        ("done", str(out / "b")),
    ]
    assert report["bags"][1]["error"].startswith(f"cannot read bag {bad}")
    assert (report["totals"]["done"], report["totals"]["failed"]) == (2, 1)
    assert f"failed {bad}: cannot read bag {bad}" in caplog.text
    assert listing(out) == sorted(["a", "b", *(f"{n}/{f}" for n in "ab" for f in (f"{n}.mcap", "metadata.yaml"))])


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_chunks_merged_in_order_equal_the_whole_bag(tmp_path: Path, segmenter: Segmenter, storage: str) -> None:
    """Three time-range chunks (each starting from the camera_info in force) merged give the same bag,
    message for message and connection for connection, as one pass over it."""
    cams = [SyntheticCamera(FRONT), SyntheticCamera("/camera/left/image_raw", compressed=True)]
    bag = write_synthetic_drive(tmp_path / "in", 7, cams, W, H, rate_hz=10, storage=storage).path
    outputs = ("labels", "drivable_mask", "labels/compressed")
    whole = tmp_path / "whole"
    process_bag(bag, whole, segmenter, outputs=outputs, storage=storage, progress=False, copy_inputs=True)
    info = inspect_bag(bag, ())
    ranges = chunk_ranges(info, 3)
    assert len(ranges) == 3 and ranges[0][0] is None and ranges[-1][1] is None
    parts = []
    for i, time_range in enumerate(ranges):
        part = tmp_path / "chunks" / f"chunk-{i}"
        process_bag(
            bag,
            part,
            segmenter,
            outputs=outputs,
            storage=storage,
            progress=False,
            time_range=time_range,
            copy_inputs=True,
        )
        parts.append(part)
    # Thirds of [first camera_info, after the last frame] end 0.7 us before frames 2 and 4, so the
    # camera_info of each (recorded 1 us before its frame) lies in the chunk before the frame's own.
    assert [len(read_bag(p).get(FRONT, [])) for p in parts] == [2, 2, 3]
    assert [len(read_bag(p).get("/camera/front/camera_info", [])) for p in parts] == [3, 2, 2]
    merged = tmp_path / "merged"
    merge_chunk_bags(parts, merged, storage, force=False)
    assert read_bag(merged) == read_bag(whole)
    assert topics_metadata(merged) == topics_metadata(whole)
    assert metadata_text(merged) == metadata_text(whole)
    if storage == "sqlite3":  # and written in the same order, not only read back sorted by time
        assert _rows_as_written(merged / "merged.db3") == _rows_as_written(whole / "whole.db3")


def _rows_as_written(db3: Path) -> list[tuple[str, int, bytes]]:
    with sqlite3.connect(db3) as db:
        query = "SELECT t.name, m.timestamp, m.data FROM messages m JOIN topics t ON m.topic_id = t.id ORDER BY m.id"
        return list(db.execute(query))


def test_ray_options_without_ray_are_refused(tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert process(spec_path, str(tmp_path / "in"), str(tmp_path / "out"), "--workers", "2") == 2
    assert "error: --workers only applies with --ray (process on a Ray cluster)" in caplog.text


def test_without_ray_installed_ray_is_one_line_naming_the_install_command(drives: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from seg_perception import cli; "
        f"sys.exit(cli.main(['process', {str(drives)!r}, {str(tmp_path / 'out')!r}, '--ray']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: --ray needs Ray, which is not installed") and "pip install" in lines[0]
    assert not (tmp_path / "out").exists()


def test_ctrl_c_keeps_the_bags_already_complete_and_nothing_partial(
    drives: Path, tmp_path: Path, spec_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt in the middle of the second bag: exit 130, the first bag stays, no staging."""
    real_segment = Segmenter.segment
    calls: list[int] = []

    def segment_then_stop(self: Segmenter, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 4 + 2:  # drives/a has 4 frames; stop at the 2nd frame of city/b
            raise KeyboardInterrupt
        return real_segment(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "segment", segment_then_stop)
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    assert process(spec_path, str(drives), str(out), "--summary", str(summary)) == 130
    assert listing(out) == ["a", "a/a.mcap", "a/metadata.yaml"]
    report = json.loads(summary.read_text())
    assert [b["status"] for b in report["bags"]] == ["done", "interrupted", "interrupted"]
    assert report["totals"]["interrupted"] == 2


def test_force_keeps_the_staging_of_a_process_running_now(
    drives: Path, tmp_path: Path, spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run holds an exclusive lock on its staging directory's lock file for its whole life: `--force`
    removes a killed run's staging but skips (and names, one line) one whose lock is held right now."""
    out = tmp_path / "out"
    live = out / ".process.partial-live"
    (live / "city" / "b").mkdir(parents=True)
    (live / "city" / "b" / "metadata.yaml").write_text("the other run's")
    dead = out / ".process.partial-dead"
    dead.mkdir()
    (dead / STAGING_LOCK).write_text("")  # nobody holds it: a killed run's
    with open(live / STAGING_LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the running process holds it
        assert process(spec_path, str(drives), str(out), "--force") == 0
        assert (live / "city" / "b" / "metadata.yaml").read_text() == "the other run's"
    assert not dead.exists()
    lines = [r.getMessage() for r in caplog.records if str(live) in r.getMessage()]
    assert lines == [f"skipping {live}: the staging directory of a process running now"], lines
    assert len(read_bag(out / "city" / "b")["/camera/left/segmentation/labels"]) == 3
