"""Regenerate the docs' pictures (docs/images/) from real runs of the package: `make pictures`.

    PYTHONPATH=. .venv/bin/python tools/make_pictures.py                       # demo panel, eval report, health
    PYTHONPATH=. .venv/bin/python tools/make_pictures.py --bench-json bench.json   # ... and the bench plot

Each picture comes from the command the docs show next to it, run in a scratch directory:
  demo_panel.jpg         `python -m seg_perception.demo` (the node over DDS on a generated drive): its first
                         input | overlay | drivable panel, 1200 px wide
  eval_report.jpg        `seg-perception synth` + `eval --report` on docs/accuracy.md's held-out scenes, the
                         report's top as headless Chromium renders it 2000 px wide, halved
  health_conditions.png  tools/health_panel.py (each health condition on a generated frame)
  drivable_grid.jpg      a generated scene, its overlay, and the bird's-eye grid the node's projector makes of
                         its labels (the generator's camera as camera_info and mounting pose)
  multi_camera.jpg       the node with `cameras: [front, left, right]` over DDS: a generated frame per camera
                         in, each camera's segmentation/overlay back
  bench.png              only with --bench-json: the plot of that `seg-perception bench --json` run, so the
                         picture shows the run whose numbers docs/performance.md quotes (a bench takes minutes
                         and its figures belong with the page's table, not with whoever ran make pictures)
JPEGs are written at quality 85 so the committed files stay small.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "docs" / "images"
CLI = [sys.executable, "-m", "seg_perception.cli"]
JPEG_QUALITY = 85
PANEL_WIDTH = 1200
GRID_SCENE_SEED = 27
MULTI_CAMERA_SEEDS = (31, 44, 58)
REPORT_WINDOW = (2000, 2714)  # the screenshot's window, halved for the picture (1000 x 1357)


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"{path} is not a readable image")
    return image


def _write_jpeg(image: np.ndarray, path: Path) -> None:
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise SystemExit(f"cannot write {path}")


def demo_panel(work: Path, out: Path) -> None:
    demo = work / "demo_out"
    _run([sys.executable, "-m", "seg_perception.demo", "--out", str(demo), "--force", "--frames", "60"], REPO)
    first = json.loads((demo / "summary.json").read_text())["panels"][0]
    panel = _read(demo / first)
    height = round(panel.shape[0] * PANEL_WIDTH / panel.shape[1])
    _write_jpeg(cv2.resize(panel, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA), out / "demo_panel.jpg")


def eval_report(work: Path, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("eval_report.jpg needs chromium (apt-get install chromium)")
    report = work / "eval_report"
    _run([*CLI, "synth", "--out", "heldout", "--frames", "12", "--size", "1280x720", "--seed", "900000"], work)
    _run([*CLI, "eval", "--images", "heldout", "--labels", "heldout", "--report", "eval_report"], work)
    shot = work / "eval_report.png"
    width, height = REPORT_WINDOW
    _run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={work / 'chromium_profile'}",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
            (report / "index.html").as_uri(),
        ],
        work,
    )
    page = _read(shot)
    _write_jpeg(cv2.resize(page, (width // 2, height // 2), interpolation=cv2.INTER_AREA), out / "eval_report.jpg")


def drivable_grid(work: Path, out: Path) -> None:
    """A generated 1280x720 scene, the demo model's overlay, and segmentation/drivable_grid as the node computes
    it (the same projector and occupancy table), with the generator's own camera as camera_info and mount."""
    from seg_perception.core.ground_grid import FREE, OCCUPIED, GridSpec, GroundProjector, MountPose, occupancy_table
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec
    from seg_perception.pipeline import OutputSelection, Segmenter
    from seg_perception.synthetic.scenes import generate_scene_with_geometry

    scene, geo = generate_scene_with_geometry(GRID_SCENE_SEED, 1280, 720, flat=True)
    spec = load_model_spec(default_spec_path())
    grid_spec = GridSpec()  # the node's defaults: 0.2 m cells, 40 x 40 m ahead of base_link
    with Segmenter(spec, backend="onnxruntime") as segmenter:
        result = segmenter.segment(scene.image, "RGB", OutputSelection(overlay=True))
    if result.overlay is None:
        raise SystemExit("the Segmenter returned no overlay")
    projector = GroundProjector(geo.k, MountPose(z=geo.camera_height), grid_spec, 1280, 720)
    grid = projector.project(result.labels, occupancy_table(spec.drivable_ids, spec.num_classes))
    # As rviz's Map display shows it: free white, occupied black, unseen grey; x (forward) up, y (left) left.
    shades = np.full(grid.shape, 128, np.uint8)
    shades[grid == FREE], shades[grid == OCCUPIED] = 255, 0
    top_view = np.ascontiguousarray(shades.T[::-1, ::-1])
    side = 360
    tiles = [
        cv2.resize(cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), (640, side), interpolation=cv2.INTER_AREA),
        cv2.resize(cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR), (640, side), interpolation=cv2.INTER_AREA),
        cv2.cvtColor(cv2.resize(top_view, (side, side), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR),
    ]
    _write_jpeg(cv2.hconcat(tiles), out / "drivable_grid.jpg")


def multi_camera(work: Path, out: Path) -> None:
    """The node with `cameras: [front, left, right]` over DDS: one generated frame per camera in, each camera's
    overlay back (one batched inference), inputs above their overlays."""
    import threading
    import time

    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from seg_perception.ros.domain_ids import release_domain_id, reserve_domain_id
    from seg_perception.ros.messages import image_message
    from seg_perception.ros.node_process import NodeProcess, apply_to_this_process
    from seg_perception.synthetic.scenes import generate_scene

    cameras = ("front", "left", "right")
    frames = {cam: generate_scene(seed, 640, 360).image for cam, seed in zip(cameras, MULTI_CAMERA_SEEDS, strict=True)}
    domain = reserve_domain_id()
    apply_to_this_process(domain)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    probe = Node("pictures", namespace="/camera", context=context)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
    overlays: dict[str, np.ndarray] = {}

    def keep(cam: str, msg: Image) -> None:
        overlays[cam] = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3]

    pubs = {cam: probe.create_publisher(Image, f"{cam}/image", qos) for cam in cameras}
    for cam in cameras:
        probe.create_subscription(Image, f"{cam}/segmentation/overlay", lambda m, c=cam: keep(c, m), qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    spinning = threading.Event()
    spinning.set()

    def spin() -> None:
        while spinning.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin)
    spinner.start()
    node = NodeProcess(domain, {"backend": "onnxruntime", "cameras": "[front,left,right]", "batch_window_ms": 100.0})
    try:
        deadline = time.monotonic() + 60
        while not all(p.get_subscription_count() for p in pubs.values()) or not all(
            probe.count_publishers(f"/camera/{c}/segmentation/overlay") for c in cameras
        ):
            if time.monotonic() > deadline or node.proc.poll() is not None:
                raise SystemExit(f"the node did not come up:\n{node.output[-3000:]}")
            time.sleep(0.1)
        time.sleep(0.5)  # the node's subscriber counts are re-read every 0.1 s
        header = Header(frame_id="camera")
        header.stamp.sec = 1
        for cam in cameras:
            pubs[cam].publish(image_message(header, frames[cam], "rgb8"))
        while len(overlays) < len(cameras):
            if time.monotonic() > deadline:
                raise SystemExit(f"overlays of {sorted(set(cameras) - set(overlays))} never came back")
            time.sleep(0.05)
    finally:
        node.stop()
        spinning.clear()
        spinner.join(timeout=10)
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown(context=context)
        release_domain_id(domain)
    inputs = [cv2.cvtColor(frames[c], cv2.COLOR_RGB2BGR) for c in cameras]
    for cam, tile in zip(cameras, inputs, strict=True):
        cv2.putText(tile, f"{cam}/image", (12, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2, cv2.LINE_AA)
    rows = [cv2.hconcat(inputs)]
    rows.append(cv2.hconcat([cv2.cvtColor(overlays[c].reshape(360, 640, 3), cv2.COLOR_RGB2BGR) for c in cameras]))
    both = cv2.vconcat(rows)
    _write_jpeg(
        cv2.resize(both, (both.shape[1] * 5 // 8, both.shape[0] * 5 // 8), interpolation=cv2.INTER_AREA),
        out / "multi_camera.jpg",
    )


def health_conditions(work: Path, out: Path) -> None:
    _run([sys.executable, str(REPO / "tools" / "health_panel.py"), str(out / "health_conditions.png")], REPO)


PICTURES: dict[str, Callable[[Path, Path], None]] = {
    "demo_panel.jpg": demo_panel,
    "eval_report.jpg": eval_report,
    "health_conditions.png": health_conditions,
    "drivable_grid.jpg": drivable_grid,
    "multi_camera.jpg": multi_camera,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="where the pictures go (default: docs/images)")
    parser.add_argument("--only", nargs="+", choices=sorted(PICTURES), help="regenerate only these")
    parser.add_argument("--bench-json", type=Path, help="also plot this `seg-perception bench --json` run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seg_pictures_") as scratch:
        for name in args.only or PICTURES:
            PICTURES[name](Path(scratch), args.out.resolve())
            sys.stderr.write(f"wrote {args.out / name}\n")
    if args.bench_json is not None:
        from seg_perception.bench.bench_report import plot

        plot(json.loads(args.bench_json.read_text()), args.out / "bench.png")
        sys.stderr.write(f"wrote {args.out / 'bench.png'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
