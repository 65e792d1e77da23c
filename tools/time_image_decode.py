"""Time to_inference_frame per encoding: this tree's image_codec against another git ref's, interleaved; JSON out.

    PYTHONPATH=$PWD .venv/bin/python tools/time_image_decode.py --ref main --size 1280x720 --repeats 200

Both modules run in one process, alternating call by call, so machine load hits them alike. The ref's
image_codec.py is read with ``git show`` (its own imports resolve against this tree).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from seg_perception.core import image_codec

REPO = Path(__file__).resolve().parent.parent
ENCODINGS_8BIT = ("rgb8", "bgr8", "rgba8", "mono8", "yuv422", "bayer_rggb8")
ENCODINGS_16BIT = ("mono16", "rgb16", "rgba16")


def load_ref(ref: str, directory: Path) -> ModuleType:
    """image_codec.py as it is at ``ref``, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{ref}:seg_perception/core/image_codec.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = directory / "image_codec_ref.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("image_codec_ref", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--padding", type=int, default=0, help="bytes of row padding")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = load_ref(args.ref, Path(tmp))
        for encoding in ENCODINGS_8BIT + ENCODINGS_16BIT:
            accepted = encoding in ref.SUPPORTED_ENCODINGS
            layout = image_codec._layout_for(encoding)
            step = width * layout.bytes_per_pixel + args.padding
            data = rng.integers(0, 256, height * step, dtype=np.uint8)
            times: dict[str, list[float]] = {"ref": [], "tree": []}
            for _ in range(args.repeats):
                for name, module in (("ref", ref), ("tree", image_codec)):
                    if name == "ref" and not accepted:
                        continue
                    start = time.perf_counter()
                    module.to_inference_frame(encoding, height, width, step, 0, data)
                    times[name].append((time.perf_counter() - start) * 1e3)
            row: dict[str, object] = {"encoding": encoding}
            for name, samples in times.items():
                if samples:
                    row[f"{name}_median_ms"] = round(float(np.median(samples)), 4)
            results.append(row)
    out = {"ref": args.ref, "size": args.size, "padding": args.padding, "repeats": args.repeats, "results": results}
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
