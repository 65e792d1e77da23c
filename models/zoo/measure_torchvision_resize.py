"""Dev-only: how often interpolation antialias_uint8 (the fused graph on ONNX Runtime) differs from torchvision v1
resize(antialias=True) of a uint8 frame at camera sizes (white noise and synthetic scenes, two of each).

    PYTHONPATH=$PWD /work/scratch/venv-export/bin/python models/zoo/measure_torchvision_resize.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torchvision.transforms.functional as v1

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test"))
from tiny_models import spec_dict

from seg_perception.core.graph_preprocess import input_geometry, preprocess_graph
from seg_perception.core.model_spec import parse_model_spec
from seg_perception.synthetic.scenes import generate_scene

LOG = logging.getLogger("measure_torchvision_resize")
CASES = (((1920, 1080), (924, 520)), ((3840, 2160), (924, 520)))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    for (cw, ch), (mw, mh) in CASES:
        raw = spec_dict("m.onnx", ["a", "b"], pixel_range=255.0, mean=[0.0] * 3, std=[1.0] * 3, width=mw, height=mh)
        raw["input"]["interpolation"] = "antialias_uint8"
        spec = parse_model_spec(raw, Path(tempfile.gettempdir()))
        graph = preprocess_graph(spec, input_geometry(spec, cw, ch), "RGB", 1, 17, 8, "x")
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(cw)
        frames = [rng.integers(0, 256, (ch, cw, 3), dtype=np.uint8) for _ in range(2)]
        frames += [generate_scene(seed, cw, ch).image for seed in range(2)]
        differ = total = 0
        for frame in frames:
            tensor = torch.from_numpy(frame).permute(2, 0, 1)[None].contiguous()
            expected = v1.resize(tensor, [mh, mw], antialias=True)[0].permute(1, 2, 0).numpy().astype(np.float32)
            got = session.run(None, {"image": frame[None]})[0][0].transpose(1, 2, 0)
            differ, total = differ + int((got != expected).sum()), total + got.size
            LOG.info(
                "%dx%d -> %dx%d: %d differ, max %.0f",
                cw,
                ch,
                mw,
                mh,
                (got != expected).sum(),
                abs(got - expected).max(),
            )
        LOG.info(
            "%dx%d -> %dx%d: %d of %d values (%.2f per million)", cw, ch, mw, mh, differ, total, differ / total * 1e6
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
