"""The two INT8 QDQ recipes: one for TensorRT's explicit quantization, one that ONNX Runtime's CPU kernels run fast.

Both are QuantizeLinear/DequantizeLinear graphs made by ``onnxruntime.quantization.quantize_static`` from
the same calibrated ranges (``core.calibration``) and both are checked against fp32 by the same accuracy
gate (``core.int8_gate``). They differ in where the Q/DQ pairs go and in the integer types, because the
two runtimes want different things:

* ``tensorrt``: Q/DQ on the *inputs* of weighted layers only (TensorRT's recommended placement: its builder
  fuses the rest and picks INT8 for everything between), symmetric int8 activations (zero point 0),
  per-channel weights kept in fp32 behind a Q/DQ pair, biases in fp32. ``engine_builder`` parses this graph.
* ``onnxruntime`` (the CPU variant): ONNX Runtime executes Q/DQ pairs as written, so in the TensorRT graph
  every tensor goes back to float between layers and INT8 ran slower than fp32 on CPU. Here the ops between
  weighted layers (ReLU, Add, Mul, Concat, pooling, Resize, Sigmoid, ...) are quantized too, so ONNX
  Runtime's graph optimizer fuses each DQ -> op -> Q into its integer kernels (``QLinearConv``,
  ``QLinearAdd``, ``QLinearMul``, ``QLinearConcat``, ``QLinearGlobalAveragePool``, ``QLinearSigmoid``) and
  tensors stay 8-bit from layer to layer. Activations are uint8 with a zero point (asymmetric: a ReLU output
  uses all 256 levels) and weights int8 per output channel, biases int32: ONNX Runtime's u8s8 kernels
  (``vpmaddubsw`` on AVX2, VNNI where the CPU has it). Convolutions that read fewer than
  ``CPU_MIN_INPUT_CHANNELS`` channels (the first layer on the 3-channel image) stay fp32: measured on the
  demo model, its 3-channel QLinearConv took 2.5x the fp32 kernel's time and pulled the normalisation
  Mul/Add into a slow NHWC broadcast. The model's outputs (logits) reach argmax/softmax in fp32, as in
  TensorRT's graph, and so does the model's *float tail*: the ops between its last weighted layers and the
  post-processing (a logit Resize, an Add of two heads) and the weighted layers that feed them run in fp32
  (the output must be float anyway: quantizing them only adds Q/DQ pairs at logit resolution and an
  integer head whose output is dequantized again). A last layer that feeds the post-processing directly
  keeps its int8 weights and reads a dequantized input, as before. Measured on the demo model at 1280x720
  (one thread, ONNX Runtime profiler): its 16->8-channel 1x1 head took 137 us as QLinearConv and 80 us in
  fp32, the float tail runs as NCHWc kernels (the logit Resize 272 us instead of 808 us in plain NCHW) and
  two Q/DQ pairs at 192x320 go (430 us): the model part 6.9 ms instead of 7.9 ms (fp32 9.9 ms).

Each recipe has its own version (in the cache key, so a graph made for one is never served for the other)
and its own cache file name suffix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports INT8_TARGETS while building its parser: no onnx import there
    import onnx

INT8_TARGETS = ("tensorrt", "onnxruntime")
TARGET_METADATA = "seg_perception.int8_target"
# The compute-heavy ops TensorRT runs as INT8 kernels; both recipes quantize them.
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# Ops ONNX Runtime has integer (QLinear*) kernels for, or passes 8-bit tensors through (Q/DQ dropped).
CPU_QUANTIZED_OP_TYPES = (
    *WEIGHTED_OP_TYPES,
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "Add",
    "Mul",
    "Concat",
    "Split",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Resize",
    "Pad",
    "Reshape",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
)
CPU_MIN_INPUT_CHANNELS = 8


@dataclass(frozen=True)
class QdqRecipe:
    """How one target's QDQ graph is made from calibrated ranges."""

    target: str
    version: str  # part of cache keys: bump when the recipe changes
    op_types: tuple[str, ...]
    activation_unsigned: bool
    extra_options: dict[str, Any] = field(default_factory=dict)
    min_input_channels: int = 0  # weighted layers reading fewer channels stay fp32
    file_suffix: str = "qdq"
    float_into_post: bool = False  # the model's outputs reach argmax/softmax in fp32, its float tail with them

    @property
    def precision(self) -> str:
        """The graph's ``seg_perception.precision`` metadata."""
        return "int8-qdq" if self.target == "tensorrt" else "int8-qdq-cpu"


TENSORRT_RECIPE = QdqRecipe(
    target="tensorrt",
    version="qdq-trt/2",
    op_types=WEIGHTED_OP_TYPES,
    activation_unsigned=False,
    extra_options={
        # TensorRT's INT8 is symmetric: zero points must be 0.
        "ActivationSymmetric": True,
        "WeightSymmetric": True,
        # fp32 weights -> Q -> DQ is the form every TensorRT ONNX parser accepts.
        "AddQDQPairToWeight": True,
        # TensorRT fuses fp32 biases into its INT8 convolutions; it cannot use int32 DQ biases.
        "QuantizeBias": False,
        # Q/DQ on the *inputs* of weighted layers only (TensorRT's recommended placement): the
        # next layer quantizes its own input, and the last layer's logits reach argmax in fp32.
        "OpTypesToExcludeOutputQuantization": list(WEIGHTED_OP_TYPES),
    },
)
CPU_RECIPE = QdqRecipe(
    target="onnxruntime",
    version="qdq-ort-cpu/2",
    op_types=CPU_QUANTIZED_OP_TYPES,
    activation_unsigned=True,
    extra_options={
        "ActivationSymmetric": False,  # uint8 with a zero point: ReLU outputs use all 256 levels
        "WeightSymmetric": True,  # int8 weights, zero point 0: the u8s8 kernels
        # int32 biases (the default): what QLinearConv takes, so DQ -> Conv -> Q fuses into it.
    },
    min_input_channels=CPU_MIN_INPUT_CHANNELS,
    file_suffix="qdq-cpu",
    float_into_post=True,
)
RECIPES = {r.target: r for r in (TENSORRT_RECIPE, CPU_RECIPE)}
TARGET_DESCRIPTIONS = {
    "tensorrt": "TensorRT's explicit-quantization placement (Q/DQ on weighted layers' inputs), for engine builds",
    "onnxruntime": "the ONNX Runtime CPU variant (integer kernels from layer to layer), for onnxruntime:int8-qdq",
}


def recipe_for(target: str) -> QdqRecipe:
    """The recipe of an INT8 target (tensorrt or onnxruntime)."""
    if target not in RECIPES:
        raise ValueError(f"INT8 target {target!r} is not one of {', '.join(INT8_TARGETS)}")
    return RECIPES[target]


def graph_target(qdq: onnx.ModelProto) -> str:
    """The target a QDQ graph was made for (graphs without the entry predate the CPU variant: tensorrt)."""
    meta = {p.key: p.value for p in qdq.metadata_props}
    return meta.get(TARGET_METADATA, "tensorrt")


def narrow_input_convs(model: onnx.ModelProto, min_channels: int) -> list[str]:
    """Names of Conv nodes whose input has fewer than `min_channels` channels (weight dim 1 x group)."""
    if min_channels <= 0:
        return []
    weights = {i.name: i for i in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        shape = tuple(weights[node.input[1]].dims)
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if len(shape) >= 2 and shape[1] * group < min_channels:
            names.append(node.name)
    return names
