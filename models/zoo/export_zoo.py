"""Dev-only: export the model zoo's small random-initialised instances and their reference labels.

Needs PyTorch, never at run time or in `make test` (see models/zoo/README.md for the venv):

    python3 -m venv .venv-zoo
    .venv-zoo/bin/pip install torch==2.13.0 transformers==5.24.0 onnx onnxruntime onnxscript opencv-python-headless
    .venv-zoo/bin/python models/zoo/export_zoo.py            # all families, or name some

Each family gets `<family>/model.onnx` (exported with torch.onnx.export, the path its library documents)
and `<family>/reference.npz`: the labels the library's own post-processing gives on frames/*.png at
camera resolution, with the preprocessing the spec describes done in torch (bilinear, half-pixel
centres, no antialiasing; see the README's Model spec section for why that is the resize we reproduce).
"""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
from torch import nn

ZOO = Path(__file__).resolve().parent
LOG = logging.getLogger("export_zoo")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MMSEG_MEAN = (123.675, 116.28, 103.53)  # on the 0-255 scale, RGB
MMSEG_STD = (58.395, 57.12, 57.375)


def frames() -> list[np.ndarray]:
    """The committed camera frames, RGB uint8."""
    return [cv2.imread(str(p))[..., ::-1].copy() for p in sorted((ZOO / "frames").glob("frame_*.png"))]


def model_input(
    frame: np.ndarray, width: int, height: int, mean: tuple[float, ...], std: tuple[float, ...], scale: float
) -> torch.Tensor:
    """The spec's preprocessing in torch: float bilinear resize (align_corners=False, no antialias),
    then (pixel / 255 * scale - mean) / std, NCHW."""
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    return (x / 255.0 * scale - m) / s


def export(model: nn.Module, example: torch.Tensor, out: Path, outputs: list[str], dynamic_batch: bool) -> None:
    """torch.onnx.export (the dynamo exporter, opset 18), batch dynamic or fixed at the example's."""
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=64)}} if dynamic_batch else None
    if dynamic_batch:  # torch.export specialises a batch of 1 to a constant
        example = torch.cat([example, example])
    torch.onnx.export(
        model,
        (example,),
        str(out),
        input_names=["pixel_values"],
        output_names=outputs,
        dynamic_shapes=shapes,
        opset_version=18,
        external_data=False,
        dynamo=True,
    )
    # The exporter annotates every node with its Python stack trace; drop that (3/4 of the file), not the graph.
    import onnx

    model_proto = onnx.load(str(out))
    for node in model_proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in model_proto.graph.value_info:
        del value.metadata_props[:]
    onnx.save(model_proto, str(out))


def balance_classes(bias: torch.Tensor, logits: Callable[[], torch.Tensor], share: float | None = None) -> None:
    """Shift a random head's class biases so each class wins somewhere on the frames (a random-initialised
    net otherwise answers one class everywhere, which would prove nothing). `logits` gives [N, C, H, W];
    with `share`, a 2-class head's class 1 wins on about that share of the pixels."""
    with torch.no_grad():
        x = logits()
        if share is None:
            bias -= x.mean(dim=(0, 2, 3))
        else:
            margin = (x[:, 1] - x[:, 0]).flatten()
            bias[1] -= torch.quantile(margin, 1.0 - share)


# ---------------------------------------------------------------------------------------- families


def segformer() -> dict[str, np.ndarray]:
    """Hugging Face SegFormer: logits at 1/4 of the input, upsampled by post_process_semantic_segmentation."""
    import transformers
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(
        num_labels=6,
        depths=[1, 1, 1, 1],
        hidden_sizes=[8, 16, 24, 32],
        mlp_ratios=[2, 2, 2, 2],
        num_attention_heads=[1, 1, 2, 2],
        decoder_hidden_size=32,
    )
    net = SegformerForSemanticSegmentation(config).eval()

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(pixel_values=x).logits

    processor = SegformerImageProcessor(do_resize=False)  # the resize is the spec's, done below
    width, height = 160, 96
    inputs = torch.cat([model_input(f, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0) for f in frames()])
    balance_classes(net.decode_head.classifier.bias, lambda: net(pixel_values=inputs).logits)
    labels = []
    with torch.no_grad():
        for frame in frames():
            x = F.interpolate(
                torch.from_numpy(frame).permute(2, 0, 1)[None].float(), size=(height, width), mode="bilinear"
            )
            pixels = processor(images=x[0].numpy(), input_data_format="channels_first", return_tensors="pt")
            outputs = net(pixel_values=pixels["pixel_values"])
            seg = processor.post_process_semantic_segmentation(outputs, target_sizes=[frame.shape[:2]])[0]
            labels.append(seg.numpy().astype(np.uint8))
        example = model_input(frames()[0], width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0)
        export(Logits().eval(), example, ZOO / "segformer" / "model.onnx", ["logits"], dynamic_batch=True)
    return {
        "labels": np.stack(labels),
        "exporter": np.array(f"torch {torch.__version__}, transformers {transformers.__version__}"),
    }


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """The U-Net shape segmentation_models_pytorch builds: a strided encoder, a decoder that upsamples
    (nearest, x2) and concatenates the skip at each stage, a 3x3 segmentation head at input resolution."""

    def __init__(self, classes: int, widths: tuple[int, ...] = (8, 16, 24, 32)) -> None:
        super().__init__()
        self.stem = _Block(3, widths[0])
        self.down = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), _Block(a, b)) for a, b in itertools.pairwise(widths))
        self.up = nn.ModuleList(_Block(b + a, a) for a, b in itertools.pairwise(widths))
        self.head = nn.Conv2d(widths[0], classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in reversed(self.up):
            skip = skips.pop()
            y = up(torch.cat([F.interpolate(y, size=skip.shape[-2:], mode="nearest"), skip], 1))
        return self.head(y)


def _randomised(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics (a fresh BatchNorm is the identity, which hides bugs)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def unet() -> dict[str, np.ndarray]:
    """smp-style U-Net, ImageNet mean/std, RGB, static batch 1; smp's post-processing is argmax(1)."""
    torch.manual_seed(1)
    net = _randomised(UNet(classes=5), 1)
    width, height = 160, 96
    inputs = torch.cat([model_input(f, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0) for f in frames()])
    balance_classes(net.head.bias, lambda: net(inputs))
    with torch.no_grad():
        labels = []
        for frame in frames():
            logits = net(model_input(frame, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0))
            labels.append(_nearest(logits.argmax(1), frame))
        example = model_input(frames()[0], width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0)
        export(net, example, ZOO / "unet_imagenet" / "model.onnx", ["logits"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": np.array(f"torch {torch.__version__}")}


def _nearest(labels: torch.Tensor, frame: np.ndarray) -> np.ndarray:
    """[1, h, w] head labels to the camera with nearest (floor) sampling, as F.interpolate(mode='nearest')."""
    up = F.interpolate(labels[:, None].float(), size=frame.shape[:2], mode="nearest")
    return up[0, 0].numpy().astype(np.uint8)


class MultiTask(nn.Module):
    """TwinLiteNet / YOLOP shape: one encoder, a 2-class drivable head and a 2-class lane head at input size."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = UNet(classes=16)
        self.drivable = nn.Conv2d(16, 2, 1)
        self.lane = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = F.relu(self.encoder(x))
        return self.drivable(features), self.lane(features)


def multitask() -> dict[str, np.ndarray]:
    torch.manual_seed(2)
    net = _randomised(MultiTask(), 2)
    width, height = 160, 96
    inputs = torch.cat([model_input(f, width, height, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1.0) for f in frames()])
    balance_classes(net.drivable.bias, lambda: net(inputs)[0], share=0.5)
    balance_classes(net.lane.bias, lambda: net(inputs)[1], share=0.12)  # lanes are thin
    drivable, lane = [], []
    with torch.no_grad():
        for frame in frames():
            d, ln = net(model_input(frame, width, height, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1.0))
            drivable.append(_nearest(d.argmax(1), frame))
            lane.append(_nearest(ln.argmax(1), frame))
        example = model_input(frames()[0], width, height, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1.0)
        export(net, example, ZOO / "multitask_drivable_lane" / "model.onnx", ["drivable", "lane"], False)
    d_all, l_all = np.stack(drivable), np.stack(lane)
    merged = np.where(l_all == 1, 2, d_all).astype(np.uint8)  # background 0, drivable 1, lane 2 painted over
    return {"labels": merged, "drivable": d_all, "lane": l_all, "exporter": np.array(f"torch {torch.__version__}")}


class WithArgmax(nn.Module):
    """An export with the argmax inside: int64 labels [N, H, W] (mmseg deploy / many ONNX zoos)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).argmax(1)


def labels_int64() -> dict[str, np.ndarray]:
    """BGR input on the 0-255 scale with mmsegmentation's mean/std, labels (int64) out at input size."""
    torch.manual_seed(3)
    inner = _randomised(UNet(classes=7), 3)
    net = WithArgmax(inner)
    width, height = 128, 96
    bgr_mean, bgr_std = MMSEG_MEAN[::-1], MMSEG_STD[::-1]
    bgr_frames = [np.ascontiguousarray(f[..., ::-1]) for f in frames()]
    inputs = torch.cat([model_input(f, width, height, bgr_mean, bgr_std, 255.0) for f in bgr_frames])
    balance_classes(inner.head.bias, lambda: inner(inputs))
    with torch.no_grad():
        labels = []
        for frame in frames():
            bgr = np.ascontiguousarray(frame[..., ::-1])
            labels.append(_nearest(net(model_input(bgr, width, height, bgr_mean, bgr_std, 255.0)), frame))
        example = model_input(frames()[0][..., ::-1].copy(), width, height, bgr_mean, bgr_std, 255.0)
        export(net, example, ZOO / "labels_int64" / "model.onnx", ["labels"], dynamic_batch=True)
    return {"labels": np.stack(labels), "exporter": np.array(f"torch {torch.__version__}")}


class NhwcProbabilities(nn.Module):
    """NHWC in (a TensorFlow-style export), softmax probabilities NHWC out at half the input size."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(F.avg_pool2d(x.permute(0, 3, 1, 2), 2))
        return logits.softmax(1).permute(0, 2, 3, 1)


def probabilities_nhwc() -> dict[str, np.ndarray]:
    torch.manual_seed(4)
    inner = _randomised(UNet(classes=4), 4)
    net = NhwcProbabilities(inner).eval()
    width, height = 160, 96
    inputs = torch.cat([model_input(f, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0) for f in frames()])
    balance_classes(inner.head.bias, lambda: inner(F.avg_pool2d(inputs, 2)))
    with torch.no_grad():
        labels = []
        for frame in frames():
            x = model_input(frame, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0).permute(0, 2, 3, 1)
            probs = net(x)  # [1, h, w, C]
            labels.append(_nearest(probs.argmax(-1), frame))
        example = model_input(frames()[0], width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0).permute(0, 2, 3, 1)
        export(net, example.contiguous(), ZOO / "probabilities_nhwc" / "model.onnx", ["probs"], dynamic_batch=True)
    return {"labels": np.stack(labels), "exporter": np.array(f"torch {torch.__version__}")}


class DictOutputs(nn.Module):
    """torchvision's segmentation models' shape: a dict {'out', 'aux'} of logits upsampled inside the
    model to the input size (F.interpolate bilinear, align_corners=False)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(_Block(3, 16), nn.MaxPool2d(2), _Block(16, 24), nn.MaxPool2d(2), _Block(24, 32))
        self.classifier = nn.Conv2d(32, 6, 1)
        self.aux_classifier = nn.Conv2d(32, 6, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone(x)
        size = x.shape[-2:]
        return {
            "out": F.interpolate(self.classifier(f), size=size, mode="bilinear", align_corners=False),
            "aux": F.interpolate(self.aux_classifier(f), size=size, mode="bilinear", align_corners=False),
        }


def dict_outputs() -> dict[str, np.ndarray]:
    """torchvision FCN / DeepLabV3 / LRASPP style; their post-processing is out.argmax(1)."""
    torch.manual_seed(5)
    net = _randomised(DictOutputs(), 5)
    width, height = 160, 96
    inputs = torch.cat([model_input(f, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0) for f in frames()])
    balance_classes(net.classifier.bias, lambda: net(inputs)["out"])
    with torch.no_grad():
        labels = []
        for frame in frames():
            out = net(model_input(frame, width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0))["out"]
            labels.append(_nearest(out.argmax(1), frame))
        example = model_input(frames()[0], width, height, IMAGENET_MEAN, IMAGENET_STD, 1.0)
        export(net, example, ZOO / "dict_outputs" / "model.onnx", ["out", "aux"], dynamic_batch=True)
    return {"labels": np.stack(labels), "exporter": np.array(f"torch {torch.__version__}")}


FAMILIES: dict[str, Callable[[], dict[str, np.ndarray]]] = {
    "segformer": segformer,
    "unet_imagenet": unet,
    "multitask_drivable_lane": multitask,
    "labels_int64": labels_int64,
    "probabilities_nhwc": probabilities_nhwc,
    "dict_outputs": dict_outputs,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", help=f"some of {', '.join(FAMILIES)} (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = [n for n in args.families if n not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    for name in args.families or FAMILIES:
        (ZOO / name).mkdir(exist_ok=True)
        reference = FAMILIES[name]()
        np.savez_compressed(ZOO / name / "reference.npz", **reference)
        onnx_mb = (ZOO / name / "model.onnx").stat().st_size / 1e6
        LOG.info("%s: model.onnx %.2f MB, reference labels %s", name, onnx_mb, reference["labels"].shape)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
