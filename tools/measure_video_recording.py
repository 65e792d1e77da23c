"""What a video-recorded drive costs to process: decode per frame, `process` throughput, bytes per frame.

    .venv/bin/python tools/measure_video_recording.py [--frames 60] [--size 1280x720] [--json out.json]

Writes a generated drive three ways with `seg-perception synth --bag` (raw `sensor_msgs/Image`, H.264 without
B-frames, H.264 with 2 B-frames), then measures, on this machine:
  * decode: the H.264 topics' access units pushed through `core/video_stream.VideoStreamDecoder` (PyAV),
    pictures to RGB included, per frame (median of `--repeats` passes over the bag);
  * process: wall time of `seg-perception process BAG OUT --outputs labels/compressed` per frame, for the raw
    and the H.264 bag (model load and the first-frame warm-up included, so read it as throughput of a run);
  * sizes: the input bag's storage bytes per frame and the output's (labels as PNG only), against the raw
    frame's W*H*3 bytes.
Prints one JSON object (and writes it with --json). The machine's load average is recorded beside the figures:
compare runs made on a quiet machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "seg_perception.cli"]


def _run(args: list[str]) -> float:
    """Run one CLI command; its wall time in seconds (a failure ends the measurement with its output)."""
    start = time.perf_counter()
    done = subprocess.run(CLI + args, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"measure_video_recording: {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return time.perf_counter() - start


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _storage_bytes(bag: Path) -> int:
    return sum(p.stat().st_size for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def _decode_ms_per_frame(bag: Path, repeats: int) -> tuple[float, int]:
    """Median over `repeats` passes of the decode time per picture, and the pictures decoded per pass."""
    from rosbags.typesys import Stores, get_typestore

    from seg_perception.bag.bag_reader import open_bag, read_messages
    from seg_perception.bag.video_topics import COMPRESSED_VIDEO, FFMPEG_PACKET, register_video_types, video_unit
    from seg_perception.core.video_stream import VideoStreamDecoder

    store = get_typestore(Stores.LATEST)
    register_video_types(store)
    with open_bag(bag) as reader:
        conns = [c for c in reader.connections if c.msgtype in (COMPRESSED_VIDEO, FFMPEG_PACKET)]
        units = [
            video_unit(store.deserialize_cdr(raw, c.msgtype), c.msgtype, store)
            for c, _, raw in read_messages(reader, conns)
        ]
    per_frame, pictures = [], 0
    for _ in range(repeats):
        decoder: VideoStreamDecoder[int] = VideoStreamDecoder(conns[0].topic)
        start = time.perf_counter()
        got = 0
        for i, unit in enumerate(units):
            got += len(decoder.push(unit.fmt, unit.data, i, unit.keyframe))
        got += len(decoder.flush())
        per_frame.append((time.perf_counter() - start) * 1000 / max(got, 1))
        pictures = got
    return statistics.median(per_frame), pictures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--repeats", type=int, default=3, help="decode passes (median)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    raw_frame = width * height * 3
    load = [os.getloadavg()[0]]
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "frames": args.frames,
        "size": f"{width}x{height}",
        "raw_frame_bytes": raw_frame,
        "bags": {},
    }
    with tempfile.TemporaryDirectory(prefix="video_recording_") as scratch:
        tmp = Path(scratch)
        kinds = {"raw": [], "h264": ["--video", "h264"], "h264_bframes2": ["--video", "h264", "--bframes", "2"]}
        for name, extra in kinds.items():
            bag = tmp / name
            _run(["synth", "--bag", str(bag), "--frames", str(args.frames), "--size", args.size, *extra])
            figures: dict[str, Any] = {"input_bytes_per_frame": round(_storage_bytes(bag) / args.frames)}
            figures["input_share_of_raw"] = round(figures["input_bytes_per_frame"] / raw_frame, 4)
            if name != "raw":
                ms, pictures = _decode_ms_per_frame(bag, args.repeats)
                figures["decode_ms_per_frame"] = round(ms, 2)
                figures["pictures_decoded"] = pictures
            if name != "h264_bframes2":
                seconds = _run(["process", str(bag), str(tmp / f"{name}_out"), "--outputs", "labels/compressed"])
                figures["process_s"] = round(seconds, 2)
                figures["process_frames_per_s"] = round(args.frames / seconds, 2)
                figures["output_bytes_per_frame"] = round(_storage_bytes(tmp / f"{name}_out") / args.frames)
            out["bags"][name] = figures
    load.append(os.getloadavg()[0])
    out["conditions"] = {"load_average_1min": load, "cores": os.cpu_count()}
    text = json.dumps(out, indent=2)
    if args.json is not None:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
