"""`seg-perception bench-fleet`: the same synthetic drives processed on Ray with 1 and with 2 workers.

Each worker is one actor with one inference thread (`--threads 1`, one CPU). The actors are started and
have imported everything before the clock starts (a cluster keeps its workers); each compiles the model
for the camera size on its first frame, inside the measurement. frames/s is frames segmented over the
wall clock from the first bag dispatched to the last bag committed (reading, writing, the commit and,
for one bag per worker, nothing else). efficiency = fps(2 workers) / (2 x fps(1 worker)).

Schema (schema_version 1):
  {"schema_version": 1, "benchmark": "fleet_process", "machine": {"cpus", "platform", "python"},
   "model": str, "backend": str, "ray": str, "settings": {"bags", "frames_per_bag", "size": "WxH",
   "storage", "threads_per_worker": 1, "cpus_per_worker": 1},
   "runs": [{"workers": int, "bags": int, "bags_done": int, "frames": int, "seconds": float,
             "fps": float}],  (workers 1, then 2)
   "efficiency": float}
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from seg_perception.cli_args import number, synthetic_size
from seg_perception.core.atomic_files import write_command_output
from seg_perception.core.errors import SegPerceptionError

LOG = logging.getLogger("seg_perception")
SCHEMA_VERSION = 1
WORKER_COUNTS = (1, 2)


def _make_drives(root: Path, bags: int, frames: int, size: tuple[int, int], storage: str) -> None:
    from seg_perception.synthetic.drive_bag import write_synthetic_drive

    width, height = size
    for i in range(bags):
        write_synthetic_drive(root / f"drive_{i:03d}", frames, width=width, height=height, seed=i, storage=storage)


def _measure(ray: Any, args: argparse.Namespace, drives: Path, out: Path, workers: int) -> dict[str, Any]:
    from seg_perception.bag.offline_processing import default_outputs
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec
    from seg_perception.fleet.bag_inputs import plan_bags
    from seg_perception.fleet.fleet_runner import FleetRequest, run_fleet
    from seg_perception.fleet.fleet_summary import DONE
    from seg_perception.fleet.ray_pool import RayActorPool
    from seg_perception.fleet.work_units import ProcessOptions

    spec = load_model_spec(args.model or default_spec_path())
    options = ProcessOptions(args.model, args.backend, 1, tuple(default_outputs(spec)), (), args.storage)
    plan = plan_bags([str(drives)], out, force=True)
    pool = RayActorPool(ray, options, workers, num_cpus=1.0, num_gpus=0.0)
    try:
        ray.get([actor.name.remote() for actor in pool.actors])  # started, imports done
    except BaseException:
        pool.close()  # run_fleet closes it from here on
        raise
    request = FleetRequest(plan, options, workers=workers, force=True, progress=False, ray=args.ray)
    summary = run_fleet(request, lambda _n, _f: pool)
    if summary.interrupted:
        raise KeyboardInterrupt
    failed = [b for b in summary.bags if b.status != DONE]
    if failed:
        raise SegPerceptionError(f"bench-fleet: {failed[0].input} failed: {failed[0].error}")
    fps = summary.frames / summary.seconds if summary.seconds > 0 else 0.0
    LOG.info("%d worker(s): %d frames in %.2f s, %.1f frames/s", workers, summary.frames, summary.seconds, fps)
    return {
        "workers": workers,
        "bags": len(summary.bags),
        "bags_done": summary.count(DONE),
        "frames": summary.frames,
        "seconds": round(summary.seconds, 4),
        "fps": round(fps, 3),
        "backend": summary.backend,
    }


def cmd_bench_fleet(args: argparse.Namespace) -> int:
    from seg_perception.core.model_spec import default_spec_path
    from seg_perception.core.spec_loader import load_model_spec
    from seg_perception.fleet.ray_runtime import LOCAL, import_ray, ray_session

    import_ray()
    spec = load_model_spec(args.model or default_spec_path())
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        drives = Path(tmp) / "drives"
        _make_drives(drives, args.bags, args.frames, args.size, args.storage)
        with ray_session(args.ray or LOCAL) as ray:
            runs = [_measure(ray, args, drives, Path(tmp) / f"out_{w}", w) for w in WORKER_COUNTS]
    fps1, fps2 = runs[0]["fps"], runs[1]["fps"]
    report = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "fleet_process",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "model": spec.name,
        "backend": runs[0].pop("backend"),
        "ray": args.ray or LOCAL,
        "settings": {
            "bags": args.bags,
            "frames_per_bag": args.frames,
            "size": f"{args.size[0]}x{args.size[1]}",
            "storage": args.storage,
            "threads_per_worker": 1,
            "cpus_per_worker": 1,
        },
        "runs": [runs[0], {k: v for k, v in runs[1].items() if k != "backend"}],
        "efficiency": round(fps2 / (2 * fps1), 4) if fps1 > 0 else 0.0,
    }
    text = json.dumps(report, indent=2) + "\n"
    if args.json is not None:
        write_command_output(args.json, text, "--json")
    sys.stdout.write(text)  # the report is the command's output
    return 0


def register(subparsers: Any) -> None:
    """Add `bench-fleet` to the seg-perception command line."""
    from seg_perception.bag.bag_io import STORAGE_CHOICES
    from seg_perception.fleet.ray_runtime import add_ray_argument

    p = subparsers.add_parser(
        "bench-fleet", help="frames/s of `process --ray` with 1 and 2 workers on the same synthetic drives (JSON)"
    )
    p.add_argument("--json", type=Path, default=None, help="write the report here (it is printed too)")
    p.add_argument("--model", type=Path, default=None, help="model spec (default: the bundled demo model)")
    p.add_argument(
        "--backend",
        choices=("auto", "onnxruntime", "tensorrt"),
        default="onnxruntime",
        help="auto: TensorRT when it imports and a GPU exists, else ONNX Runtime; or name one",
    )
    p.add_argument("--bags", type=number(int, 2), default=4, help="synthetic drives (default 4)")
    p.add_argument("--frames", type=number(int, 1), default=40, help="frames per drive (default 40)")
    p.add_argument("--size", type=synthetic_size, default=(640, 360), help="camera WxH (default 640x360)")
    p.add_argument("--storage", choices=STORAGE_CHOICES, default="mcap", help="storage of the drives and outputs")
    add_ray_argument(p, "measure")
    p.set_defaults(func=cmd_bench_fleet)
