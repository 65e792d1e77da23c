"""`make demo`: a synthetic drive played into the real node over DDS at camera rate, outputs recorded.

Writes demo_out/: overlay.mp4, a few input | overlay | drivable PNG panels, summary.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from seg_perception.cli_args import OneLineErrorParser, number, synthetic_size
from seg_perception.core.atomic_files import atomic_path, write_text_atomic
from seg_perception.core.errors import SegPerceptionError
from seg_perception.core.image_files import write_image
from seg_perception.core.model_spec import default_spec_path
from seg_perception.core.output_rule import fresh_output_dir
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.core.video_file import VideoCodec, open_mp4_writer
from seg_perception.ros.domain_ids import reserve_domain_id
from seg_perception.synthetic.scenes import generate_drive

LOG = logging.getLogger("seg_perception.demo")
TOPICS = ("labels", "drivable_mask", "overlay")


class NodeStartError(SegPerceptionError):
    """The node process ended, or never answered, before the demo could play."""


class RecorderError(SegPerceptionError):
    """The demo's recorder thread died: the outputs after it were never recorded."""


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "max": float(values.max()),
    }


def _panel(frame: np.ndarray, overlay: np.ndarray, drivable: np.ndarray) -> np.ndarray:
    """input | overlay | drivable side by side, as BGR for write_image (cv2 order)."""
    mask = cv2.cvtColor(drivable, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(np.hstack([frame, overlay, mask]), cv2.COLOR_RGB2BGR)


# libvpx's VP9 (what the pinned OpenCV wheels can write for browsers) costs about 0.8 s per 1280x720 frame
# on these 2 cores, 0.15 s at 640x360: the demo video is a preview, so it is written at most this wide.
VIDEO_MAX_WIDTH = 640


def video_size(width: int, height: int, max_width: int = VIDEO_MAX_WIDTH) -> tuple[int, int]:
    """(width, height) of the demo video for camera frames of this size: at most `max_width`, even sides."""
    scale = min(1.0, max_width / width)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def write_overlay_video(path: Path, frames_rgb: Sequence[np.ndarray], fps: float, size: tuple[int, int]) -> VideoCodec:
    """The overlay frames as an MP4 of `size` (H.264 where OpenCV can, see core.video_file), renamed into
    place when complete; returns the codec written."""
    with atomic_path(path) as partial:  # keeps the suffix, which picks the container
        writer, codec = open_mp4_writer(partial, fps, size, final_path=path)
        try:
            for frame in frames_rgb:
                if (frame.shape[1], frame.shape[0]) != size:
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    LOG.info("wrote %s: %d frames, %s (%s)", path, len(frames_rgb), codec.name, codec.fourcc)
    return codec


def run_demo(out: Path, frames: int, width: int, height: int, rate: float, seed: int, backend: str) -> dict:
    """Run the whole demo and return the summary that is also written to summary.json."""
    from seg_perception.ros.drive_player import DrivePlayer
    from seg_perception.ros.node_process import NodeProcess, apply_to_this_process

    out.mkdir(parents=True, exist_ok=True)  # main() applies the output rule (core.output_rule) first
    spec = load_model_spec(default_spec_path())
    t0 = time.monotonic()
    drive = [
        s.image
        for s in tqdm(generate_drive(frames, width, height, seed), total=frames, desc="synthesising", unit="frame")
    ]
    LOG.info("generated %d frames %dx%d in %.1f s", frames, width, height, time.monotonic() - t0)

    domain_id = reserve_domain_id()
    apply_to_this_process(domain_id)
    node = NodeProcess(domain_id, {"backend": backend, "qos_depth": 1})
    player = DrivePlayer(domain_id, "/camera", TOPICS, keep_pixels=("overlay", "drivable_mask"))
    try:
        if not player.wait_for_node(timeout=60, gave_up=node.exited):
            LOG.debug("node output:\n%s", node.output)
            raise NodeStartError(f"the node did not come up: {node.last_error()}")
        with tqdm(total=frames, desc=f"playing at {rate:.0f} Hz", unit="frame") as bar:

            def advance(_index: int) -> None:
                bar.update()

            player.play(drive, rate, on_frame=advance)
        player.settle()
    finally:
        player.close()
        node.stop()
    if player.errors:  # the recorder thread died: its video and figures would be of a truncated run
        raise RecorderError("; ".join(player.errors))
    log = player.log
    sent = len(log.sent_stamps)
    answered = log.outputs["labels"]
    index_of = {s: i for i, s in enumerate(log.sent_stamps)}

    overlays = {r.stamp_ns: r.pixels for r in log.outputs["overlay"] if r.pixels is not None}
    drivables = {r.stamp_ns: r.pixels for r in log.outputs["drivable_mask"] if r.pixels is not None}
    vsize = video_size(width, height)
    codec = write_overlay_video(out / "overlay.mp4", [overlays[s] for s in sorted(overlays)], rate, vsize)
    both = sorted(set(overlays) & set(drivables))
    panels = []
    for k in np.linspace(0, len(both) - 1, num=min(5, len(both))).astype(int) if both else []:
        stamp = both[k]
        path = out / f"frame_{index_of[stamp]:04d}.png"
        write_image(path, _panel(drive[index_of[stamp]], overlays[stamp], drivables[stamp]))
        panels.append(path.name)

    latency = log.latencies_ms("labels")
    span_s = (answered[-1].arrived_ns - answered[0].arrived_ns) / 1e9 if len(answered) > 1 else 0.0
    summary = {
        "model": spec.name,
        "backend_requested": backend,
        "frames_sent": sent,
        "frames_answered": len(answered),
        "dropped": sent - len(answered),
        "input_rate_hz": rate,
        "output_fps": (len(answered) - 1) / span_s if span_s > 0 else 0.0,
        "latency_ms": _percentiles(latency),
        "frame_size": [width, height],
        "video": "overlay.mp4",
        "video_size": list(vsize),
        "video_codec": {"fourcc": codec.fourcc, "name": codec.name, "plays_in_browsers": codec.plays_in_browsers},
        "panels": panels,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}",
        "node_log_tail": node.output.splitlines()[-5:],
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The demo's options (`make demo` passes --force: it regenerates demo_out)."""
    parser = OneLineErrorParser(prog="python -m seg_perception.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output directory")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out whole")
    parser.add_argument("--frames", type=number(int, 1), default=300, help="frames the camera sends")
    parser.add_argument("--size", type=synthetic_size, default=(1280, 720), help="camera WIDTHxHEIGHT")
    parser.add_argument("--rate", type=number(float, 0.1), default=30.0, help="camera frames per second")
    parser.add_argument("--seed", type=number(int, 0), default=7, help="seed of the synthetic drive")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "onnxruntime", "tensorrt"),
        help="auto: TensorRT when it imports and a GPU exists, else ONNX Runtime; or name one",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    width, height = args.size
    start = time.monotonic()
    try:
        fresh_output_dir(args.out, "--out", args.force)
    except SegPerceptionError as exc:
        LOG.error("error: %s", exc)
        return 2
    try:
        s = run_demo(args.out, args.frames, width, height, args.rate, args.seed, args.backend)
    except (NodeStartError, RecorderError) as exc:  # exit 1, not 2: the command line was valid, the run failed
        LOG.error("error: %s", exc)
        return 1
    lat = s["latency_ms"]
    LOG.info(
        "demo: %s on %s, %d frames %dx%d sent at %.0f Hz",
        s["model"],
        args.backend,
        s["frames_sent"],
        width,
        height,
        args.rate,
    )
    LOG.info(
        "answered %d frames, dropped %d (the node keeps only the newest frame)", s["frames_answered"], s["dropped"]
    )
    LOG.info("end-to-end latency p50 %.1f ms, p95 %.1f ms, max %.1f ms", lat["p50"], lat["p95"], lat["max"])
    LOG.info("output rate %.1f frames/s", s["output_fps"])
    LOG.info(
        "wrote %s/{overlay.mp4, %d panels, summary.json} in %.0f s",
        args.out,
        len(s["panels"]),
        time.monotonic() - start,
    )
    return 0 if s["frames_answered"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
