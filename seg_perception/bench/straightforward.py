"""What a careful newcomer writes without fusing: the baseline the benchmark measures us against.

bytes -> numpy, cv2.resize, numpy normalise and transpose, float32 model on ONNX Runtime, numpy
argmax, cv2.resize nearest back to the camera size, colourise every frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from seg_perception.core.model_spec import ModelSpec


class StraightforwardSegmenter:
    """Unfused pre/post-processing around the bare model (single-head specs, stretch resize)."""

    def __init__(self, spec: ModelSpec, threads: int = 0) -> None:
        import onnxruntime as ort

        if len(spec.heads) != 1 or spec.heads[0].kind == "labels" or spec.input.resize != "stretch":
            raise ValueError("the straightforward baseline handles one logits/probabilities head and stretch resize")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(spec.onnx_path), options, providers=["CPUExecutionProvider"])
        self.spec = spec
        inp = spec.input
        self.mean = np.array(inp.mean, np.float32)
        self.std = np.array(inp.std, np.float32)
        self.scale = np.float32(inp.pixel_range / 255.0)
        self.table = np.array([c if c is not None else 0 for c in spec.heads[0].class_ids], np.uint8)
        self.palette = np.zeros((256, 3), np.uint8)
        for i, cls in enumerate(spec.classes):
            self.palette[i] = cls.color

    def segment(self, data: bytes, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """rgb8 bytes in; (labels at camera size, colour mask) out."""
        inp = self.spec.input
        frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
        small = cv2.resize(frame, (inp.width, inp.height), interpolation=cv2.INTER_LINEAR)
        if inp.channel_order == "BGR":
            small = small[..., ::-1]
        x = (small.astype(np.float32) * self.scale - self.mean) / self.std
        if inp.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        x = np.ascontiguousarray(x[np.newaxis])
        (scores,) = self.session.run([self.spec.heads[0].name], {inp.name: x})
        axis = self.spec.heads[0].channel_axis or 1
        labels = self.table[np.argmax(scores[0], axis=axis - 1)]
        labels = cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
        return labels, self.palette[labels]
