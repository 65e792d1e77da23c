"""The spec's resizes equal the libraries' own functions: cv2 INTER_LINEAR on uint8 and PIL's BILINEAR on
uint8 bit for bit, the float antialias within 0.5 grey level of PIL on float images; shorter_side is
torchvision Resize(int)'s size; native pads to the stride and crops back; labels agree end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from tiny_models import any_size_model, smooth_image, spec_dict, write_spec

from seg_perception.core.errors import ModelSpecError
from seg_perception.core.graph_preprocess import input_geometry, preprocess_graph, shorter_side_size
from seg_perception.core.model_spec import parse_model_spec
from seg_perception.core.spec_loader import load_model_spec
from seg_perception.pipeline import Segmenter
from seg_perception.synthetic.scenes import generate_scene

CLASSES = ["road", "car", "sky", "tree"]


def _frames(width: int, height: int) -> list[np.ndarray]:
    """A photographic-like synthetic drive frame, a smooth image and white noise (every rounding case)."""
    noise = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [generate_scene(3, width, height).image, smooth_image(height, width, seed=1), noise]


def _pixels_spec(tmp_path: Path, **input_keys: Any) -> Any:
    """A spec whose model input is the resized pixel itself (pixel_range 255, mean 0, std 1)."""
    raw = spec_dict("m.onnx", CLASSES, pixel_range=255.0, mean=[0.0] * 3, std=[1.0] * 3, **input_keys)
    return parse_model_spec(raw, tmp_path)


def _model_input(spec: Any, frame: np.ndarray) -> np.ndarray:
    """The fused graph's front alone on ONNX Runtime: the float model input, as HWC."""
    geo = input_geometry(spec, frame.shape[1], frame.shape[0])
    pre = preprocess_graph(spec, geo, "RGB", 1, 17, 8, "x")
    session = ort.InferenceSession(pre.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": frame[np.newaxis]})[0][0].transpose(1, 2, 0)


SIZES = [  # (camera w, h) -> (model w, h): 16:9 downscales, an exact 2x, odd ratios, upscales
    ((1280, 720), (924, 520)),
    ((1280, 720), (512, 512)),
    ((1280, 720), (640, 360)),
    ((97, 53), (61, 37)),
    ((64, 48), (160, 90)),
    ((160, 90), (160, 41)),
]


@pytest.mark.parametrize(("camera", "model"), SIZES, ids=[f"{c[0]}x{c[1]}-{m[0]}x{m[1]}" for c, m in SIZES])
def test_cv2_linear_uint8_and_pil_bilinear_are_bit_exact(tmp_path: Path, camera: Any, model: Any) -> None:
    (cw, ch), (mw, mh) = camera, model
    cv2_spec = _pixels_spec(tmp_path, width=mw, height=mh, interpolation="cv2_linear_uint8")
    pil_spec = _pixels_spec(tmp_path, width=mw, height=mh, interpolation="pil_bilinear")
    for i, frame in enumerate(_frames(cw, ch)):
        expected_cv2 = cv2.resize(frame, (mw, mh), interpolation=cv2.INTER_LINEAR)
        assert np.array_equal(_model_input(cv2_spec, frame), expected_cv2.astype(np.float32)), f"cv2 frame {i}"
        expected_pil = np.asarray(Image.fromarray(frame).resize((mw, mh), Image.Resampling.BILINEAR))
        assert np.array_equal(_model_input(pil_spec, frame), expected_pil.astype(np.float32)), f"PIL frame {i}"


@pytest.mark.parametrize(("camera", "model"), SIZES[:2] + SIZES[3:5], ids=["924x520", "512x512", "odd", "upscale"])
def test_float_antialias_is_within_half_a_grey_level_of_pil_on_float_images(
    tmp_path: Path, camera: Any, model: Any
) -> None:
    (cw, ch), (mw, mh) = camera, model
    spec = _pixels_spec(tmp_path, width=mw, height=mh, interpolation="antialias")
    for frame in _frames(cw, ch):
        got = _model_input(spec, frame)
        expected = np.stack(
            [
                np.asarray(
                    Image.fromarray(frame[:, :, c].astype(np.float32), mode="F").resize((mw, mh), Image.BILINEAR)
                )
                for c in range(3)
            ],
            axis=2,
        )
        assert float(np.abs(got - expected).max()) <= 0.5
        # ... and it is not plain bilinear: downscaling without antialias is more than a grey level away.
        if mw < cw:
            plain = cv2.resize(frame.astype(np.float32), (mw, mh), interpolation=cv2.INTER_LINEAR)
            assert float(np.abs(plain - expected).max()) > 1.0


TORCHVISION = Path(__file__).resolve().parent.parent / "models" / "zoo" / "torchvision_resize.npz"


# Values antialias_uint8 rounds one level off torchvision in a fixture case (ONNX Runtime's float32 Mul/Add;
# docs/model.md): the camera-size downscales hold a window around one such value of a white-noise frame.
ROUNDED_OFF = {"1920x1080_924x520": 1, "3840x2160_924x520": 1}


def _fixture_case(fixture: Any, case: str, frame: np.ndarray, spec: Any) -> np.ndarray:
    """The graph's model input for one fixture frame: the whole output, or for a cropped case the crop set in
    a black frame of the camera size and the output window the fixture holds."""
    if f"{case}_crop" not in fixture:
        return _model_input(spec, frame)
    y0, x0, ch, cw = (int(v) for v in fixture[f"{case}_crop"])
    oy0, ox0, oy1, ox1 = (int(v) for v in fixture[f"{case}_window"])
    full = np.zeros((ch, cw, 3), np.uint8)
    full[y0 : y0 + frame.shape[0], x0 : x0 + frame.shape[1]] = frame
    return _model_input(spec, full)[oy0:oy1, ox0:ox1]


@pytest.mark.parametrize(("interpolation", "call"), [("antialias_uint8", "v1"), ("antialias_uint8_fixed_point", "v2")])
def test_torchvision_antialias_on_uint8_is_bit_exact(tmp_path: Path, interpolation: str, call: str) -> None:
    """Against torchvision's own outputs (written by models/zoo/export_library_zoo.py; no torch here):
    antialias_uint8 (its meaning since before 2026-12-07) is the float kernel rounded once, transforms v1,
    what weights.transforms() runs; antialias_uint8_fixed_point is PyTorch's uint8 fixed-point kernel
    (transforms.v2); they differ from each other on most noise. The fixed-point kernel is bit-exact
    everywhere; the float one is bit-exact but for the ROUNDED_OFF values, one level each."""
    fixture = np.load(TORCHVISION)
    cases = sorted({k.rsplit("_", 1)[0] for k in fixture if k.endswith("_input")})
    assert len(cases) == 5
    other = "v2" if call == "v1" else "v1"
    for case in cases:
        mw, mh = (int(v) for v in case.split("_")[1].split("x"))
        spec = _pixels_spec(tmp_path, width=mw, height=mh, interpolation=interpolation)
        off = ROUNDED_OFF.get(case, 0) if call == "v1" else 0
        for i, frame in enumerate(fixture[f"{case}_input"]):
            expected = fixture[f"{case}_{call}"][i].astype(np.float32)
            got = _fixture_case(fixture, case, frame, spec)
            assert int((got != expected).sum()) == off, f"{case} frame {i}: {int((got != expected).sum())} differ"
            assert float(np.abs(got - expected).max()) <= 1.0, case
        noise_other = fixture[f"{case}_{other}"][0].astype(np.float32)
        assert not np.array_equal(_fixture_case(fixture, case, fixture[f"{case}_input"][0], spec), noise_other), case


def test_antialias_rounded_is_not_a_name(tmp_path: Path) -> None:
    """antialias_rounded was never released (antialias_uint8 kept its meaning): a spec naming it is refused."""
    with pytest.raises(ModelSpecError, match="antialias_uint8_fixed_point"):
        _pixels_spec(tmp_path, width=32, height=32, interpolation="antialias_rounded")


def test_shorter_side_is_torchvision_resize_int_size() -> None:
    assert shorter_side_size(1280, 720, 520) == (924, 520)  # a 16:9 camera is not stretched to a square
    assert shorter_side_size(720, 1280, 520) == (520, 924)
    assert shorter_side_size(1920, 1080, 512) == (910, 512)  # int(910.22): truncated as torchvision does


def _end_to_end(tmp_path: Path, stride: int, **input_keys: Any) -> Path:
    any_size_model(tmp_path / "any.onnx", len(CLASSES), stride=stride)
    raw = spec_dict("any.onnx", CLASSES, **input_keys)
    return write_spec(tmp_path / "any.yaml", raw)


def _reference_labels(spec: Any, resized: np.ndarray, model_hw: tuple[int, int], stride: int) -> np.ndarray:
    """The library-resized frame normalised, padded bottom-right to the model size, run through the bare
    model, argmax, the padding's head cells cropped off."""
    x = resized.astype(np.float32) / 255.0 * spec.input.pixel_range
    x = (x - np.asarray(spec.input.mean, np.float32)) / np.asarray(spec.input.std, np.float32)
    h, w = resized.shape[:2]
    pad = (spec.input.pad_value / 255.0 * spec.input.pixel_range - np.asarray(spec.input.mean)) / spec.input.std
    padded = np.broadcast_to(pad.astype(np.float32), (model_hw[0], model_hw[1], 3)).copy()
    padded[:h, :w] = x
    session = ort.InferenceSession(str(spec.onnx_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": padded.transpose(2, 0, 1)[np.newaxis].copy()})[0][0]
    return np.argmax(logits, axis=0)[: -(-h // stride), : -(-w // stride)].astype(np.uint8)


@pytest.mark.parametrize("interpolation", ["cv2_linear_uint8", "pil_bilinear", "antialias"])
def test_shorter_side_labels_agree_with_the_library_pipeline(tmp_path: Path, interpolation: str) -> None:
    spec = load_model_spec(
        _end_to_end(tmp_path, 1, resize="shorter_side", shorter_side=90, interpolation=interpolation)
    )
    frame = generate_scene(5, 320, 180).image
    if interpolation == "cv2_linear_uint8":
        resized = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_LINEAR)
    elif interpolation == "pil_bilinear":
        resized = np.asarray(Image.fromarray(frame).resize((160, 90), Image.Resampling.BILINEAR))
    else:
        resized = np.stack(
            [
                np.asarray(
                    Image.fromarray(frame[:, :, c].astype(np.float32), mode="F").resize((160, 90), Image.BILINEAR)
                )
                for c in range(3)
            ],
            axis=2,
        )
    expected = _reference_labels(spec, resized, (90, 160), 1)
    with Segmenter(spec, backend="onnxruntime", output_resolution="model") as seg:
        labels = seg.segment(frame).labels
    assert labels.shape == (90, 160)
    assert float(np.mean(labels == expected)) >= 0.999


def test_native_size_pads_to_the_stride_and_crops_back(tmp_path: Path) -> None:
    spec = load_model_spec(_end_to_end(tmp_path, 8, resize="native", pad_to_multiple=8, pad_value=0))
    frame = generate_scene(6, 100, 60).image  # neither side a multiple of 8: padded to 104x64
    geo = input_geometry(spec, 100, 60)
    assert (geo.model_width, geo.model_height, geo.resized_width, geo.resized_height) == (104, 64, 100, 60)
    expected = _reference_labels(spec, frame, (64, 104), 8)  # 13x8 head cells, the frame reaches all of them
    with Segmenter(spec, backend="onnxruntime", output_resolution="model") as seg:
        assert np.array_equal(seg.segment(frame).labels, expected)
        camera = seg.segment(frame).labels.copy()
    with Segmenter(spec, backend="onnxruntime") as seg:  # at the camera: pixel p reads head cell p // 8
        labels = seg.segment(frame).labels
    assert labels.shape == (60, 100)
    assert np.array_equal(labels, camera.repeat(8, axis=0).repeat(8, axis=1)[:60, :100])


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"resize": "shorter_side"}, "key 'input.shorter_side': missing"),
        ({"shorter_side": 520}, "key 'input.shorter_side': not used with resize: stretch"),
        ({"pad_to_multiple": 32}, "key 'input.pad_to_multiple': not used with resize: stretch"),
        ({"interpolation": "lanczos"}, "key 'input.interpolation': 'lanczos' is not allowed"),
    ],
)
def test_resize_options_refuse_nonsense(tmp_path: Path, keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        parse_model_spec(spec_dict("m.onnx", CLASSES, **keys), tmp_path)


def test_native_size_on_a_fixed_size_model_is_refused_at_compile(tmp_path: Path) -> None:
    from tiny_models import conv_logits_model

    from seg_perception.core.graph_compiler import compile_fused_graph

    conv_logits_model(tmp_path / "m.onnx", len(CLASSES), 48, 64)
    spec = load_model_spec(write_spec(tmp_path / "m.yaml", spec_dict("m.onnx", CLASSES, resize="native")))
    compile_fused_graph(spec, 64, 48)  # the camera is the model's size: fine
    with pytest.raises(ModelSpecError, match="fixed at 64x48; export the model with a dynamic height and width"):
        compile_fused_graph(spec, 160, 90)
