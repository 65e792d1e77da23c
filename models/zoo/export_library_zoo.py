"""Dev-only: zoo families exported by the libraries themselves, with references from each library's DEFAULT
inference path (not the spec's preprocessing re-done in torch, as export_zoo.py does).

Needs PyTorch and the libraries, never at run time or in `make test` (see models/zoo/README.md):

    python3.11 -m venv /work/scratch/venv-export
    /work/scratch/venv-export/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/scratch/venv-export/bin/pip install segmentation-models-pytorch==0.6.0 timm transformers onnx \
        onnxscript onnxruntime numpy opencv-python-headless pillow pyyaml
    /work/scratch/venv-export/bin/python models/zoo/export_library_zoo.py     # all families, or name some

Weights are random (nothing is downloaded: weights=None, weights_backbone=None, encoder_weights=None), made
non-degenerate the way a trained net is: BatchNorm statistics estimated on the committed frames in train
mode, the classifier scaled so the logits have a real spread and its biases centred so every class wins
somewhere. Random fixtures carry no licence of their own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's own spelling
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_zoo import ZOO, export, frames

LOG = logging.getLogger("export_library_zoo")


def _versions(*modules: object) -> np.ndarray:
    return np.array(", ".join(f"{m.__name__} {m.__version__}" for m in modules))  # type: ignore[attr-defined]


def non_degenerate(
    net: nn.Module,
    inputs: Sequence[torch.Tensor],
    logits: Callable[[torch.Tensor], torch.Tensor],
    classifiers: Sequence[nn.Conv2d],
    spread: float = 4.0,
) -> None:
    """BatchNorm statistics from the frames (train mode, one batch), then the classifier convs
    scaled so the logits' standard deviation over the frames is `spread`, and the biases centred."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative: the plain mean over the frames
    net.train()
    with torch.no_grad():
        net(torch.cat(list(inputs)))  # one batch of all frames (a pooled 1x1 branch needs more than one value)
    net.eval()
    with torch.no_grad():
        out = torch.cat([logits(x).flatten(2) for x in inputs], 2)  # [1, C, pixels]
        scale = spread / float(out.std())
        for conv in classifiers:
            conv.weight *= scale
            if conv.bias is not None:
                conv.bias *= scale
        out = torch.cat([logits(x).flatten(2) for x in inputs], 2)
        centre = out.mean(dim=(0, 2))
        classifiers[0].bias -= centre  # type: ignore[operator]


def _nearest(labels: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    up = F.interpolate(labels[:, None].float(), size=size, mode="nearest")
    return up[0, 0].numpy().astype(np.uint8)


# ---------------------------------------------------------------------------------------- families


def tv_lraspp() -> dict[str, np.ndarray]:
    """torchvision LRASPP-MobileNetV3 (a slim backbone: width_mult 0.25, reduced tail); the default path is
    weights.transforms() = SemanticSegmentation(resize_size=520): uint8 tensor, shorter side 520 (bilinear,
    antialias), float, ImageNet mean/std; then model(x)['out'].argmax(1), nearest back to the camera."""
    import torchvision
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3
    from torchvision.transforms._presets import SemanticSegmentation

    torch.manual_seed(11)
    backbone = mobilenet_v3_large(weights=None, width_mult=0.25, reduced_tail=True, dilated=True)
    net = _lraspp_mobilenetv3(backbone, num_classes=6).eval()
    transform = SemanticSegmentation(resize_size=520)  # what LRASPP_MobileNet_V3_Large_Weights.transforms() builds
    inputs = [transform(torch.from_numpy(f).permute(2, 0, 1).contiguous())[None] for f in frames()]
    non_degenerate(
        net, inputs, lambda x: net(x)["out"], [net.classifier.low_classifier, net.classifier.high_classifier]
    )
    labels = []
    with torch.no_grad():
        for f, x in zip(frames(), inputs, strict=True):
            labels.append(_nearest(net(x)["out"].argmax(1), f.shape[:2]))
        LOG.info("lraspp model input %s", tuple(inputs[0].shape))
        export(net, inputs[0], ZOO / "tv_lraspp_mobilenet_v3" / "model.onnx", ["out"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": _versions(torch, torchvision)}


def _smp_preprocess(settings: dict[str, object]) -> Callable[[np.ndarray], torch.Tensor]:
    """smp's own preprocess_input with the encoder's settings, then NCHW float32 (smp resizes nothing)."""
    from segmentation_models_pytorch.encoders._preprocessing import preprocess_input

    def preprocess(f: np.ndarray) -> torch.Tensor:
        x = preprocess_input(f, **settings)
        return torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None].contiguous()

    return preprocess


def smp_unet() -> dict[str, np.ndarray]:
    """segmentation_models_pytorch Unet(resnet18), encoder_depth 3 (the file stays small); smp's
    preprocess_input with the encoder's ImageNet settings at the camera size, no resize; logits.argmax(1).
    smp 0.6.0's get_preprocessing_params('resnet18') downloads config.json from the hub (smp-hub/resnet18.imagenet);
    the same mean/std are timm's local pretrained config of resnet18 (ImageNet), so those are read instead."""
    import segmentation_models_pytorch as smp
    import timm

    torch.manual_seed(12)
    net = smp.Unet("resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(32, 16, 8), classes=5).eval()
    cfg = timm.models.get_pretrained_cfg("resnet18")
    settings: dict[str, object] = {
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "input_space": "RGB",
        "input_range": [0, 1],
    }
    preprocess = _smp_preprocess(settings)
    inputs = [preprocess(f) for f in frames()]
    non_degenerate(net, inputs, net, [net.segmentation_head[0]])
    with torch.no_grad():
        labels = [net(x).argmax(1)[0].numpy().astype(np.uint8) for x in inputs]
        export(net, inputs[0], ZOO / "smp_unet_resnet18" / "model.onnx", ["logits"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": _versions(torch, smp), "settings": np.array(str(settings))}


def smp_deeplabv3plus() -> dict[str, np.ndarray]:
    """segmentation_models_pytorch DeepLabV3Plus on a timm encoder (tu-mobilenetv3_small_050, a small file);
    for tu- encoders smp.encoders.get_preprocessing_params is local (timm's pretrained config), so smp's own
    preprocessing function is used as is; logits (upsampled x4 inside the model).argmax(1)."""
    import segmentation_models_pytorch as smp
    from segmentation_models_pytorch.encoders import get_preprocessing_params

    torch.manual_seed(14)
    encoder = "tu-mobilenetv3_small_050"
    net = smp.DeepLabV3Plus(encoder, encoder_weights=None, decoder_channels=32, classes=5).eval()
    settings = get_preprocessing_params(encoder)
    preprocess = _smp_preprocess(dict(settings))
    inputs = [preprocess(f) for f in frames()]
    non_degenerate(net, inputs, net, [net.segmentation_head[0]])
    with torch.no_grad():
        labels = [net(x).argmax(1)[0].numpy().astype(np.uint8) for x in inputs]
        export(net, inputs[0], ZOO / "smp_deeplabv3plus" / "model.onnx", ["logits"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": _versions(torch, smp), "settings": np.array(str(settings))}


def tv_deeplabv3() -> dict[str, np.ndarray]:
    """torchvision DeepLabV3-MobileNetV3 with its aux head (dict out/aux); the backbone slim (width_mult 0.25) and
    the DeepLab head built from torchvision's own ASPP at 32 channels (DeepLabHead fixes 256, a 10 MB file);
    default path as LRASPP: SemanticSegmentation(resize_size=520), then out.argmax(1), nearest to the camera."""
    import torchvision
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.segmentation.deeplabv3 import ASPP, _deeplabv3_mobilenetv3
    from torchvision.transforms._presets import SemanticSegmentation

    torch.manual_seed(15)
    backbone = mobilenet_v3_large(weights=None, width_mult=0.25, reduced_tail=True, dilated=True)
    net = _deeplabv3_mobilenetv3(backbone, num_classes=6, aux=True)
    high = net.classifier[0].convs[0][0].in_channels
    net.classifier = nn.Sequential(
        ASPP(high, (12, 24, 36), out_channels=32),
        nn.Conv2d(32, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 6, 1),
    )
    net = net.eval()
    transform = SemanticSegmentation(resize_size=520)  # DeepLabV3_MobileNet_V3_Large_Weights.transforms()
    inputs = [transform(torch.from_numpy(f).permute(2, 0, 1).contiguous())[None] for f in frames()]
    non_degenerate(net, inputs, lambda x: net(x)["out"], [net.classifier[-1]])
    labels = []
    with torch.no_grad():
        for f, x in zip(frames(), inputs, strict=True):
            labels.append(_nearest(net(x)["out"].argmax(1), f.shape[:2]))
        export(net, inputs[0], ZOO / "tv_deeplabv3_mobilenet_v3" / "model.onnx", ["out", "aux"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": _versions(torch, torchvision)}


def hf_segformer() -> dict[str, np.ndarray]:
    """Hugging Face SegFormer (a random small config); SegformerImageProcessor() with every default (resize
    to 512x512 with PIL bilinear, 1/255, ImageNet mean/std) and post_process_semantic_segmentation."""
    import transformers
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(13)
    config = SegformerConfig(
        num_labels=6,
        depths=[1, 1, 1, 1],
        hidden_sizes=[16, 32, 64, 96],
        mlp_ratios=[2, 2, 2, 2],
        num_attention_heads=[1, 1, 2, 2],
        decoder_hidden_size=64,
    )
    net = SegformerForSemanticSegmentation(config).eval()
    processor = SegformerImageProcessor()
    LOG.info("processor %s", processor)
    inputs = [processor(images=Image.fromarray(f), return_tensors="pt")["pixel_values"] for f in frames()]
    non_degenerate(net, inputs, lambda x: net(pixel_values=x).logits, [net.decode_head.classifier])

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(pixel_values=x).logits

    labels = []
    with torch.no_grad():
        for f, x in zip(frames(), inputs, strict=True):
            seg = processor.post_process_semantic_segmentation(net(pixel_values=x), target_sizes=[f.shape[:2]])[0]
            labels.append(seg.numpy().astype(np.uint8))
        export(Logits().eval(), inputs[0], ZOO / "hf_segformer" / "model.onnx", ["logits"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": _versions(torch, transformers)}


def hf_upernet() -> dict[str, np.ndarray]:
    """Hugging Face UperNetForSemanticSegmentation on a small ResNet backbone (random config); AutoImageProcessor
    maps upernet to SegformerImageProcessor, used with every default (512x512, 1/255, ImageNet mean/std);
    logits come upsampled to the input inside the model, post_process_semantic_segmentation resizes them."""
    import transformers
    from transformers import ResNetConfig, SegformerImageProcessor, UperNetConfig, UperNetForSemanticSegmentation

    torch.manual_seed(16)
    backbone = ResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 24, 32, 48],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = UperNetConfig(
        backbone_config=backbone,
        hidden_size=32,
        auxiliary_in_channels=32,
        auxiliary_channels=16,
        num_labels=6,
    )
    net = UperNetForSemanticSegmentation(config).eval()
    processor = SegformerImageProcessor()
    inputs = [processor(images=Image.fromarray(f), return_tensors="pt")["pixel_values"] for f in frames()]
    non_degenerate(net, inputs, lambda x: net(pixel_values=x).logits, [net.decode_head.classifier])

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(pixel_values=x).logits

    labels = []
    with torch.no_grad():
        for f, x in zip(frames(), inputs, strict=True):
            seg = processor.post_process_semantic_segmentation(net(pixel_values=x), target_sizes=[f.shape[:2]])[0]
            labels.append(seg.numpy().astype(np.uint8))
        export(Logits().eval(), inputs[0], ZOO / "hf_upernet" / "model.onnx", ["logits"], dynamic_batch=False)
    return {"labels": np.stack(labels), "exporter": _versions(torch, transformers)}


# (camera w, h) -> (model w, h) for the resize fixture: a downscale, an upscale, a vertical-only pass
RESIZE_CASES = (((97, 53), (61, 37)), ((48, 36), (112, 63)), ((96, 54), (96, 25)))
# Camera-size downscales (2.08x, 4.15x), kept small: a crop of a white-noise frame set in an otherwise black
# frame of the full size, and torchvision's output only in a window around a value that antialias_uint8 (the
# float kernel reproduced on ONNX Runtime) rounds one level off on the whole noise frame (docs/model.md):
# (camera, model, (crop y0, x0, h, w), (output window y0, x0, y1, x1)); the crop covers the window's taps.
CROPPED_RESIZE_CASES = (
    ((1920, 1080), (924, 520), (144, 992, 40, 64), (72, 485, 84, 501)),
    ((3840, 2160), (924, 520), (16, 2288, 64, 64), (6, 553, 15, 562)),
)


def torchvision_resizes() -> dict[str, np.ndarray]:
    """torchvision's own antialiased resizes of uint8 tensors, for test_preprocessing_matches_libraries (no torch
    there): key _v1, transforms.functional (v1), what weights.transforms() runs (float kernel, one rounding:
    interpolation antialias_uint8), and key _v2, transforms.v2 (PyTorch's uint8 fixed-point kernel: interpolation
    antialias_uint8_fixed_point), on white noise and a smooth ramp image per case; the cropped cases hold
    _crop (y0, x0, camera h, w) and _window (output y0, x0, y1, x1) and one noise frame."""
    import torchvision
    import torchvision.transforms.functional as v1
    import torchvision.transforms.v2.functional as v2

    out: dict[str, np.ndarray] = {"exporter": _versions(torch, torchvision)}
    for (cw, ch), (mw, mh) in RESIZE_CASES:
        rng = np.random.default_rng(cw * ch)
        yy, xx = np.mgrid[0:ch, 0:cw]
        ramp = np.stack([xx * 255 // max(cw - 1, 1), yy * 255 // max(ch - 1, 1), (xx + yy) % 256], axis=2)
        images = np.stack([rng.integers(0, 256, (ch, cw, 3), dtype=np.uint8), ramp.astype(np.uint8)])
        tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        key = f"{cw}x{ch}_{mw}x{mh}"
        out[f"{key}_input"] = images
        for name, module in (("v1", v1), ("v2", v2)):
            resized = module.resize(tensor, [mh, mw], antialias=True)
            out[f"{key}_{name}"] = resized.permute(0, 2, 3, 1).numpy()
    for (cw, ch), (mw, mh), (y0, x0, h, w), (oy0, ox0, oy1, ox1) in CROPPED_RESIZE_CASES:
        noise = np.random.default_rng(cw).integers(0, 256, (ch, cw, 3), dtype=np.uint8)
        crop = noise[np.newaxis, y0 : y0 + h, x0 : x0 + w]
        frame = np.zeros((1, ch, cw, 3), np.uint8)
        frame[:, y0 : y0 + h, x0 : x0 + w] = crop
        tensor = torch.from_numpy(frame).permute(0, 3, 1, 2).contiguous()
        key = f"{cw}x{ch}_{mw}x{mh}"
        out[f"{key}_input"] = crop
        out[f"{key}_crop"] = np.array([y0, x0, ch, cw])
        out[f"{key}_window"] = np.array([oy0, ox0, oy1, ox1])
        for name, module in (("v1", v1), ("v2", v2)):
            resized = module.resize(tensor, [mh, mw], antialias=True).permute(0, 2, 3, 1).numpy()
            out[f"{key}_{name}"] = resized[:, oy0:oy1, ox0:ox1]
    return out


FAMILIES: dict[str, Callable[[], dict[str, np.ndarray]]] = {
    "tv_lraspp_mobilenet_v3": tv_lraspp,
    "smp_unet_resnet18": smp_unet,
    "hf_segformer": hf_segformer,
    "smp_deeplabv3plus": smp_deeplabv3plus,
    "tv_deeplabv3_mobilenet_v3": tv_deeplabv3,
    "hf_upernet": hf_upernet,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "families",
        nargs="*",
        help=f"some of {', '.join(FAMILIES)}, or torchvision_resize (default: all, and torchvision_resize.npz)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = [n for n in args.families if n not in FAMILIES and n != "torchvision_resize"]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    torch.set_num_threads(2)
    if not args.families or "torchvision_resize" in args.families:
        np.savez_compressed(ZOO / "torchvision_resize.npz", **torchvision_resizes())
        cases = [*RESIZE_CASES, *((c[0], c[1]) for c in CROPPED_RESIZE_CASES)]
        LOG.info("torchvision_resize.npz: %s", ", ".join(f"{a}->{b}" for a, b in cases))
    for name in [n for n in args.families if n != "torchvision_resize"] if args.families else FAMILIES:
        (ZOO / name).mkdir(exist_ok=True)
        reference = FAMILIES[name]()
        np.savez_compressed(ZOO / name / "reference.npz", **reference)
        onnx_mb = (ZOO / name / "model.onnx").stat().st_size / 1e6
        LOG.info(
            "%s: model.onnx %.2f MB, reference labels %s, %s",
            name,
            onnx_mb,
            reference["labels"].shape,
            reference["exporter"],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
