"""inspect_bag and BagWorker exactly, on bags of a few 64x48 frames (fast enough to run once per mutant): the
frames and time span the driver plans with, and the unit a worker writes - where it stages it, what the
bag holds (outputs, copied inputs, storage, compression and split only for a whole bag, the unit's time
range), the progress it reports, the error line it returns and the attempt it cleans up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rosbags.rosbag2 import Reader
from tiny_models import TINY_CLASSES, tiny_spec

from seg_perception.bag.bag_io import BagError, bag_writer, typestore
from seg_perception.bag.split_bags import BagSplit
from seg_perception.fleet import work_units
from seg_perception.fleet.work_units import BagInfo, BagWorker, ProcessOptions, WorkUnit, inspect_bag
from seg_perception.synthetic.drive_bag import INFO_LEAD_NS, START_NS, SyntheticCamera, write_synthetic_drive

FRONT, REAR = SyntheticCamera("/cam/front/image_raw"), SyntheticCamera("/cam/rear/image_raw")
STEP_NS = 100_000_000  # 10 Hz


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_spec(tmp_path_factory.mktemp("model"), TINY_CLASSES)


@pytest.fixture(scope="module")
def two_cameras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 frames on each of two cameras at 10 Hz, mcap."""
    bag = tmp_path_factory.mktemp("bags") / "two"
    write_synthetic_drive(bag, 4, cameras=(FRONT, REAR), width=64, height=48, rate_hz=10.0, storage="mcap")
    return bag


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(work_units.socket, "gethostname", lambda: "node7")
    monkeypatch.setattr(work_units.os, "getpid", lambda: 4242)
    return "node7:4242"


def _topics(bag: Path) -> dict[str, int]:
    with Reader(bag) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def _meta(bag: Path) -> dict[str, Any]:
    return yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]


def _stamps(bag: Path, topic: str) -> list[int]:
    with Reader(bag) as reader:
        return [t for c, t, _ in reader.messages() if c.topic == topic]


def _unit(bag: Path, staging: Path, chunk: int = 0, chunks: int = 1, time_range: Any = (None, None)) -> WorkUnit:
    staging.mkdir(exist_ok=True)
    return WorkUnit(5, chunk, chunks, bag, "out_bag", staging, time_range, 4)


def _options(spec: Path | None, **kw: Any) -> ProcessOptions:
    base: dict[str, Any] = {
        "spec_path": spec,
        "backend": "onnxruntime",
        "threads": 1,
        "outputs": ("labels",),
        "topics": (),
        "storage": "mcap",
    }
    return ProcessOptions(**{**base, **kw})


# --- inspect_bag ---------------------------------------------------------------------------------------------


def test_inspect_counts_the_frames_of_every_camera_and_the_bag_time_span(two_cameras: Path) -> None:
    # The whole bag's span: the first camera_info, recorded INFO_LEAD_NS before the first frame, to one past
    # the last message (rosbags' end_time).
    first, end = START_NS - INFO_LEAD_NS, START_NS + 3 * STEP_NS + 1
    assert inspect_bag(two_cameras, ()) == BagInfo(8, first, end)
    assert inspect_bag(two_cameras, ("/cam/rear/image_raw",)) == BagInfo(4, first, end)
    assert inspect_bag(two_cameras, ["/cam/front/image_raw", "/cam/rear/image_raw"]) == BagInfo(8, first, end)


def test_inspect_counts_only_the_camera_topics_not_camera_info(tmp_path: Path) -> None:
    bag = tmp_path / "one"
    write_synthetic_drive(bag, 3, cameras=(FRONT,), width=64, height=48, rate_hz=10.0, storage="sqlite3")
    counts = _topics(bag)
    assert counts["/cam/front/image_raw"] == 3 and sum(counts.values()) > 3  # camera_info and more recorded
    assert inspect_bag(bag, ()) == BagInfo(3, START_NS - INFO_LEAD_NS, START_NS + 2 * STEP_NS + 1)


def test_a_camera_topic_without_messages_is_zero_frames_and_no_span(tmp_path: Path) -> None:
    bag, store = tmp_path / "empty", typestore()
    string = store.types["std_msgs/msg/String"]
    with bag_writer(bag, "mcap") as writer:
        writer.add_connection("/cam/image_raw", "sensor_msgs/msg/Image", typestore=store)
        other = writer.add_connection("/note", "std_msgs/msg/String", typestore=store)
        writer.write(other, 7_000, store.serialize_cdr(string(data="x"), "std_msgs/msg/String"))
        writer.write(other, 9_000, store.serialize_cdr(string(data="y"), "std_msgs/msg/String"))
    assert inspect_bag(bag, ()) == BagInfo(0, 0, 0)


def test_inspect_refuses_an_unknown_topic_and_a_missing_bag(two_cameras: Path, tmp_path: Path) -> None:
    with pytest.raises(BagError, match=f"^bag {two_cameras}: ") as err:
        inspect_bag(two_cameras, ("/nope",))
    assert "/nope" in str(err.value)
    with pytest.raises(BagError, match=f"^bag {tmp_path / 'none'} does not exist$"):
        inspect_bag(tmp_path / "none", ())


# --- BagWorker -----------------------------------------------------------------------------------------------


def test_a_whole_bag_unit_is_staged_under_an_attempt_directory_with_its_outputs(
    tiny: Path, two_cameras: Path, tmp_path: Path, host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    staging = tmp_path / "staging"
    unit = _unit(two_cameras, staging)
    seen: list[int] = []
    worker = BagWorker(_options(tiny, topics=("/cam/front/image_raw",), compression="file"))
    assert worker.tally is None and worker.name() == host
    result = worker.process(unit, on_frame=lambda: seen.append(1))
    assert (result.job, result.chunk, result.worker, result.error) == (5, 0, host, None)
    assert result.backend == worker._get_segmenter().describe_backend() and result.backend.startswith("onnxruntime")
    assert result.staged is not None and result.staged.name == "out_bag"
    attempt = result.staged.parent
    assert attempt.parent == staging and attempt.name.startswith("attempt-node7-4242-")
    assert result.summary is not None and (result.summary.frames, result.summary.cameras) == (4, 1)
    assert seen == [1, 1, 1, 1]
    assert capsys.readouterr().err == ""  # no progress bar of its own: the driver draws the one bar
    topics = _topics(result.staged)
    assert topics["/cam/front/segmentation/labels"] == 4 and "/cam/rear/segmentation/labels" not in topics
    assert "/cam/front/image_raw" not in topics  # copy_inputs off
    meta = _meta(result.staged)
    assert (meta["storage_identifier"], meta["compression_format"], meta["compression_mode"]) == (
        "mcap",
        "zstd",
        "file",
    )


def test_the_model_is_the_options_spec_loaded_once_and_closed(tiny: Path, two_cameras: Path, tmp_path: Path) -> None:
    worker = BagWorker(_options(tiny, threads=1, backend="onnxruntime"))
    segmenter = worker._get_segmenter()
    assert worker._get_segmenter() is segmenter
    assert [c.name for c in segmenter.spec.classes] == TINY_CLASSES  # not the bundled default model
    assert (segmenter.backend_name, segmenter.backend_reason, segmenter.threads) == (
        "onnxruntime",
        "requested explicitly",  # not "auto", which picks ONNX Runtime too on a machine without TensorRT
        1,
    )
    worker.process(_unit(two_cameras, tmp_path / "s"))
    assert worker._get_segmenter() is segmenter and segmenter._backends
    worker.close()
    assert worker._segmenter is None and not segmenter._backends
    worker.close()  # twice is fine
    assert worker._segmenter is None


def test_a_chunk_is_its_time_range_uncompressed_and_whole_inputs_copied(
    tiny: Path, two_cameras: Path, tmp_path: Path
) -> None:
    split = BagSplit(max_ns=STEP_NS)
    options = _options(tiny, outputs=("labels", "color_mask"), storage="sqlite3", compression="file", split=split)
    worker = BagWorker(ProcessOptions(**{**options.__dict__, "copy_inputs": True}))
    chunk = _unit(
        two_cameras, tmp_path / "s", chunk=1, chunks=2, time_range=(START_NS + STEP_NS, START_NS + 3 * STEP_NS)
    )
    result = worker.process(chunk)
    assert result.error is None and result.staged is not None and result.staged.name == "out_bag"
    assert (result.job, result.chunk) == (5, 1)
    assert result.summary is not None and result.summary.frames == 4  # 2 of each camera
    stamps = [START_NS + STEP_NS, START_NS + 2 * STEP_NS]
    assert _stamps(result.staged, "/cam/front/segmentation/labels") == stamps
    assert _stamps(result.staged, "/cam/rear/segmentation/color_mask") == stamps
    assert _stamps(result.staged, "/cam/front/image_raw") == stamps  # copied
    meta = _meta(result.staged)
    assert (meta["storage_identifier"], meta["compression_format"]) == ("sqlite3", "")
    assert len(meta["relative_file_paths"]) == 1  # the merge splits, not the chunk
    whole = worker.process(_unit(two_cameras, tmp_path / "w"))
    assert whole.staged is not None
    meta = _meta(whole.staged)
    assert (meta["compression_format"], meta["compression_mode"]) == ("zstd", "file")
    assert len(meta["relative_file_paths"]) == 4  # a part per 100 ms of record time
    worker.close()


class _Remote:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def remote(self, *args: Any) -> None:
        self.calls.append(args)


def test_a_ray_worker_reports_to_the_tally_unless_given_on_frame(
    tiny: Path, two_cameras: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work_units, "REPORT_EVERY_S", 0.0)
    tally = type("Tally", (), {})()
    tally.add = _Remote()
    worker = BagWorker(_options(tiny, topics=("/cam/rear/image_raw",)), tally=tally)
    assert worker.tally is tally
    worker.process(_unit(two_cameras, tmp_path / "s"))
    assert tally.add.calls == [(5, 0, 1)] * 4
    seen: list[int] = []
    worker.process(_unit(two_cameras, tmp_path / "t"), on_frame=lambda: seen.append(1))
    assert seen == [1] * 4 and len(tally.add.calls) == 4
    worker.close()


def test_a_bag_or_model_error_is_a_result_and_leaves_no_attempt(
    tiny: Path, two_cameras: Path, tmp_path: Path, host: str
) -> None:
    staging = tmp_path / "s"
    missing = tmp_path / "missing"
    result = BagWorker(_options(tiny)).process(_unit(missing, staging))
    assert result == work_units.UnitResult(5, 0, host, error=f"bag {missing} does not exist")
    assert list(staging.iterdir()) == []
    no_model = tmp_path / "none.yaml"
    result = BagWorker(_options(no_model)).process(_unit(two_cameras, staging))
    assert result.error is not None and str(no_model) in result.error and result.staged is None
    assert result.summary is None and result.backend == "" and list(staging.iterdir()) == []


def test_an_interrupted_unit_is_raised_and_leaves_no_attempt(tiny: Path, two_cameras: Path, tmp_path: Path) -> None:
    staging = tmp_path / "s"

    def stop() -> None:
        raise KeyboardInterrupt

    worker = BagWorker(_options(tiny))
    with pytest.raises(KeyboardInterrupt):
        worker.process(_unit(two_cameras, staging), on_frame=stop)
    assert list(staging.iterdir()) == []
    worker.close()
