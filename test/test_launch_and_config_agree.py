"""The launch file, parameters file, rviz config and Fast DDS profile agree with the node and with each other."""

from __future__ import annotations

import ast
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from rclpy.node import NodeNameNonExistentError
from ros_harness import node_with_probe, unique_domain_id

from seg_perception.ros.launch_arguments import rviz_config
from seg_perception.ros.parameters import PARAMETERS, validate_parameters

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seg_perception"
LAUNCH_FILE = ROOT / "launch" / "seg_perception.launch.py"
PARAMS_FILE = ROOT / "config" / "seg_perception.yaml"
RVIZ_FILE = ROOT / "config" / "seg_perception.rviz"
FASTDDS_FILE = ROOT / "config" / "fastdds_large_data.xml"

# Launch arguments and their literal defaults; None: a computed default (an installed file), checked separately.
LAUNCH_ARGUMENTS: dict[str, str | None] = {
    "model": "",
    "params_file": None,
    "namespace": "camera",
    "image_topic": "/camera/image_raw",
    "camera_info_topic": "/camera/camera_info",
    "backend": "",  # empty: the params file's value stands (test_launch_argument_precedence.py)
    "use_sim_time": "",
    "fastdds_profile": None,
    "rviz": "false",
}
# Computed defaults name the installed copy of these repository files.
COMPUTED_DEFAULTS = {"params_file": "seg_perception.yaml", "fastdds_profile": "fastdds_large_data.xml"}
NODE_INPUTS = {"image", "image/compressed", "camera_info"}

# What the node publishes, relative to its namespace, with the message type.
NODE_PUBLISHES = {
    "segmentation/labels": "sensor_msgs/Image",
    "segmentation/drivable_mask": "sensor_msgs/Image",
    "segmentation/labels/compressed": "sensor_msgs/CompressedImage",
    "segmentation/drivable_mask/compressed": "sensor_msgs/CompressedImage",
    "segmentation/overlay": "sensor_msgs/Image",
    "segmentation/color_mask": "sensor_msgs/Image",
    "segmentation/confidence": "sensor_msgs/Image",
    "segmentation/camera_info": "sensor_msgs/CameraInfo",
    "segmentation/legend": "sensor_msgs/Image",
    "segmentation/drivable_grid": "nav_msgs/OccupancyGrid",
}
# What every node has that is not ours (rclpy's logging and parameter events, the lifecycle transition events).
ROS_INFRASTRUCTURE = {"/rosout", "/parameter_events", "/camera/seg_perception/transition_event"}
LATCHED = {"segmentation/legend"}
FOUR_K_RGB8_BYTES = 3840 * 2160 * 3
DDS_NS = {"dds": "http://www.eprosima.com"}


# --- what the node really publishes ----------------------------------------------------------------------------


def test_node_publishes_exactly_the_listed_topics(spec_path: Path) -> None:
    """NODE_PUBLISHES (which the rviz checks below rely on) against a real node's publishers, seen over DDS."""
    params = {
        "model": str(spec_path),
        "backend": "onnxruntime",
        "qos_reliability": "reliable",
        "publish_overlay": True,
        "publish_color_mask": True,
        "publish_confidence": True,
    }
    expected = {f"/camera/{topic}": [kind.replace("/", "/msg/")] for topic, kind in NODE_PUBLISHES.items()}
    expected["/diagnostics"] = ["diagnostic_msgs/msg/DiagnosticArray"]
    with node_with_probe(unique_domain_id(), params) as (_, probe):

        def published() -> dict[str, list[str]]:
            try:
                found = probe.node.get_publisher_names_and_types_by_node("seg_perception", "/camera")
            except NodeNameNonExistentError:  # the node's name is discovered apart from its endpoints
                return {}
            return {topic: sorted(types) for topic, types in found}

        probe.wait_until(lambda: expected.keys() <= published().keys(), 60.0, "the node's publishers")
        topics = {t: kinds for t, kinds in published().items() if t not in ROS_INFRASTRUCTURE}
    assert topics == expected


# --- launch file -----------------------------------------------------------------------------------------------


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Every call of `name(...)` or `x.name(...)` in the tree."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == name:
                found.append(node)
    return found


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    source = LAUNCH_FILE.read_text()
    compile(source, str(LAUNCH_FILE), "exec")
    return ast.parse(source, str(LAUNCH_FILE))


@pytest.fixture(scope="module")
def declared_arguments(launch_tree: ast.Module) -> dict[str, ast.Call]:
    declared: dict[str, ast.Call] = {}
    for call in _calls(launch_tree, "DeclareLaunchArgument"):
        first = call.args[0] if call.args else _keyword(call, "name")
        assert isinstance(first, ast.Constant) and isinstance(first.value, str), ast.dump(call)
        assert first.value not in declared, f"launch argument {first.value!r} declared twice"
        declared[first.value] = call
    return declared


def test_launch_file_declares_exactly_the_documented_arguments(declared_arguments: dict[str, ast.Call]) -> None:
    assert sorted(declared_arguments) == sorted(LAUNCH_ARGUMENTS)


@pytest.mark.parametrize("name", sorted(LAUNCH_ARGUMENTS))
def test_launch_argument_has_description_and_default(name: str, declared_arguments: dict[str, ast.Call]) -> None:
    call = declared_arguments[name]
    description = _keyword(call, "description")
    assert isinstance(description, ast.Constant) and isinstance(description.value, str), f"{name}: no description"
    assert description.value.strip(), f"{name}: empty description"

    default = _keyword(call, "default_value")
    assert default is not None, f"{name}: no default_value"
    expected = LAUNCH_ARGUMENTS[name]
    if expected is None:
        file_name = COMPUTED_DEFAULTS[name]
        mentioned = {n.value for n in ast.walk(default) if isinstance(n, ast.Constant)}
        called = {n.func.id for n in ast.walk(default) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        # The profile's file name is chosen by dds_profile.profile_name, as `seg-perception run` chooses it.
        assert file_name in mentioned or (name == "fastdds_profile" and "profile_name" in called), (
            f"{name}: default should name the installed {file_name}"
        )
        assert (ROOT / "config" / file_name).is_file()
    else:
        assert isinstance(default, ast.Constant) and default.value == expected, f"{name}: {ast.unparse(default)}"

    choices = _keyword(call, "choices")
    node_parameter = next((p for p in PARAMETERS if p.name == name), None)
    if choices is not None and node_parameter is not None:
        # "" (not given: the params file's value stands) plus exactly the node's choices.
        assert ast.literal_eval(choices) == ["", *node_parameter.choices], f"{name}: choices differ from the node's"


def _segmentation_node(launch_tree: ast.Module) -> ast.Call:
    nodes = [
        n
        for n in _calls(launch_tree, "Node")
        if any(isinstance(k.value, ast.Constant) and (k.arg, k.value.value) == ("package", PACKAGE) for k in n.keywords)
    ]
    assert len(nodes) == 1, f"expected one {PACKAGE} Node, found {len(nodes)}"
    return nodes[0]


def test_launch_file_starts_the_node_with_remapped_inputs(launch_tree: ast.Module) -> None:
    node = _segmentation_node(launch_tree)
    keywords = {k.arg: k.value for k in node.keywords}
    literal = {k: v.value for k, v in keywords.items() if isinstance(v, ast.Constant)}
    assert literal["package"] == "seg_perception"
    assert literal["executable"] == "seg_perception_node"
    assert literal["name"] == "seg_perception"
    remappings = keywords["remappings"]
    assert isinstance(remappings, ast.List)
    sources = set()
    for pair in remappings.elts:
        assert isinstance(pair, ast.Tuple) and isinstance(pair.elts[0], ast.Constant)
        sources.add(pair.elts[0].value)
    assert sources == NODE_INPUTS
    assert not _calls(launch_tree, "eval"), "launch arguments must never be eval'd"
    assert not _calls(launch_tree, "PythonExpression")


def test_launch_file_passes_the_params_file_then_only_the_given_overrides(launch_tree: ast.Module) -> None:
    """The precedence itself is tested in test_launch_argument_precedence.py; here: the launch file uses it."""
    (call,) = _calls(launch_tree, "parameter_overrides")
    assert [ast.unparse(a) for a in call.args] == ["value('model')", "value('backend')", "value('use_sim_time')"]
    parameters = _keyword(_segmentation_node(launch_tree), "parameters")
    assert isinstance(parameters, ast.List) and len(parameters.elts) == 2
    first, second = parameters.elts
    assert ast.unparse(first) == "params_file", "the params file must come first (later entries win)"
    (checked,) = _calls(launch_tree, "checked_params_file")  # ... and it is refused when missing
    assert [ast.unparse(a) for a in checked.args] == ["value('params_file')"]
    assert isinstance(second, ast.DictComp) and "overrides.items()" in ast.unparse(second)


def test_launch_description_loads_through_launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from launch.actions import OpaqueFunction, SetEnvironmentVariable
        from launch.launch_description import LaunchDescription
        from launch.launch_description_sources import get_launch_description_from_python_launch_file
    except ImportError:
        pytest.skip("launch is not installable from the registry here")

    # A throwaway ament prefix so get_package_share_directory finds the package without a colcon install.
    (tmp_path / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (tmp_path / "share" / "ament_index" / "resource_index" / "packages" / "seg_perception").touch()
    (tmp_path / "share" / "seg_perception").symlink_to(ROOT)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join([str(tmp_path), os.environ.get("AMENT_PREFIX_PATH", "")]))

    description = get_launch_description_from_python_launch_file(str(LAUNCH_FILE))
    assert isinstance(description, LaunchDescription)
    assert sorted(a.name for a in description.get_launch_arguments()) == sorted(LAUNCH_ARGUMENTS)
    kinds = [type(e) for e in description.entities]
    # The Node is created inside the OpaqueFunction, once the arguments are known.
    assert kinds.index(SetEnvironmentVariable) < kinds.index(OpaqueFunction), "the DDS profile must precede the node"


# --- parameters file -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def params_values() -> dict[str, Any]:
    document = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(document) == ["/**"]
    return document["/**"]["ros__parameters"]


def test_params_file_lists_exactly_the_node_parameters(params_values: dict[str, Any]) -> None:
    assert sorted(params_values) == sorted(p.name for p in PARAMETERS)


@pytest.mark.parametrize("param", PARAMETERS, ids=lambda p: p.name)
def test_params_file_value_is_the_default(param: Any, params_values: dict[str, Any]) -> None:
    value = params_values[param.name]
    if isinstance(param.default, tuple):  # string arrays: YAML lists
        assert isinstance(value, list) and tuple(value) == param.default, f"{param.name}: {value!r}"
        validate_parameters({param.name: value})
        return
    # Same type too: ROS refuses 1 for a double parameter, and validate_parameters refuses 1.0 for an integer.
    assert type(value) is type(param.default) and value == param.default, f"{param.name}: {value!r}"
    validate_parameters({param.name: value})


def test_params_file_passes_validation(params_values: dict[str, Any]) -> None:
    validate_parameters(params_values)


def test_params_file_documents_each_parameter() -> None:
    lines = PARAMS_FILE.read_text().splitlines()
    for p in PARAMETERS:
        (index,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{p.name}:")]
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line.strip().lstrip("#").strip())
        text = " ".join(reversed(comment))
        assert p.description in text, f"{p.name}: comment should carry the description from parameters.py"
        for choice in p.choices:
            assert choice in text, f"{p.name}: comment should list allowed value {choice!r}"


# --- rviz config ------------------------------------------------------------------------------------------------


def _image_displays() -> list[dict[str, Any]]:
    config = yaml.safe_load(RVIZ_FILE.read_text())
    assert {"Panels", "Visualization Manager", "Window Geometry"} <= set(config)
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "base_link"  # the drivable grid's default frame
    return [d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/Image"]


DEFAULT_VIEW = (str(LAUNCH_ARGUMENTS["namespace"]), str(LAUNCH_ARGUMENTS["image_topic"]))
# The README's bag example: a camera under /camera/front.
FRONT_VIEW = ("/camera/front", "/camera/front/image_raw")


def _displays_for(namespace: str, image_topic: str) -> list[dict[str, Any]]:
    """The Displays of the rviz config the launch file writes for rviz:=true with these arguments."""
    config = yaml.safe_load(rviz_config(RVIZ_FILE.read_text(), namespace, image_topic))
    displays: list[dict[str, Any]] = config["Visualization Manager"]["Displays"]
    return displays


def test_shipped_rviz_config_is_the_template_at_the_launch_defaults() -> None:
    """`rviz2 -d .../seg_perception.rviz` without the launch file shows what the default launch publishes."""
    assert yaml.safe_load(rviz_config(RVIZ_FILE.read_text(), *DEFAULT_VIEW)) == yaml.safe_load(RVIZ_FILE.read_text())


@pytest.mark.parametrize(("namespace", "image_topic"), [DEFAULT_VIEW, FRONT_VIEW])
def test_rviz_shows_only_topics_that_exist(namespace: str, image_topic: str) -> None:
    prefix = "/" + namespace.strip("/")
    published_images = {f"{prefix}/{t}" for t, kind in NODE_PUBLISHES.items() if kind == "sensor_msgs/Image"}
    displays = [d for d in _displays_for(namespace, image_topic) if d["Class"] == "rviz_default_plugins/Image"]
    topics = [d["Topic"]["Value"] for d in displays]
    assert image_topic in topics
    assert f"{prefix}/segmentation/legend" in topics
    for topic in topics:
        assert topic == image_topic or topic in published_images, f"rviz shows {topic}, which nobody publishes"
    maps = [d for d in _displays_for(namespace, image_topic) if d["Class"] == "rviz_default_plugins/Map"]
    assert [m["Topic"]["Value"] for m in maps] == [f"{prefix}/segmentation/drivable_grid"]
    assert NODE_PUBLISHES["segmentation/drivable_grid"] == "nav_msgs/OccupancyGrid"


def _readme_launch_commands() -> list[str]:
    """Every `ros2 launch seg_perception ...` line of the README and the docs pages."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(p.read_text() for p in pages).replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("ros2 launch seg_perception")]


def test_readme_launches_under_another_namespace_start_the_matching_rviz() -> None:
    """The shipped rviz config shows /camera; a README launch elsewhere must let rviz follow (rviz:=true)."""
    commands = _readme_launch_commands()
    assert commands, "the README shows no ros2 launch line"
    for command in commands:
        arguments = dict(a.split(":=", 1) for a in command.split() if ":=" in a)
        namespace = "/" + arguments.get("namespace", str(LAUNCH_ARGUMENTS["namespace"])).strip("/")
        if namespace != "/" + DEFAULT_VIEW[0]:
            assert arguments.get("rviz") == "true", f"{command}: rviz would show /{DEFAULT_VIEW[0]}, not {namespace}"


def test_rviz_legend_display_is_transient_local() -> None:
    namespace = LAUNCH_ARGUMENTS["namespace"]
    for display in _image_displays():
        topic = display["Topic"]
        latched = topic["Value"] in {f"/{namespace}/{t}" for t in LATCHED}
        # The legend is published once: a volatile subscriber that joins later would never see it.
        assert (topic["Durability Policy"] == "Transient Local") == latched, topic["Value"]


# --- Fast DDS profile -------------------------------------------------------------------------------------------


def test_fastdds_profile_has_large_shared_memory_by_default() -> None:
    root = ET.parse(FASTDDS_FILE).getroot()
    assert root.tag == "{http://www.eprosima.com}dds"
    descriptors = {
        d.findtext("dds:transport_id", namespaces=DDS_NS): d
        for d in root.iterfind("dds:profiles/dds:transport_descriptors/dds:transport_descriptor", DDS_NS)
    }
    shm = [tid for tid, d in descriptors.items() if d.findtext("dds:type", namespaces=DDS_NS) == "SHM"]
    assert len(shm) == 1, "expected one SHM transport descriptor"
    shm_descriptor = descriptors[shm[0]]
    segment_size = int(shm_descriptor.findtext("dds:segment_size", namespaces=DDS_NS) or 0)
    assert segment_size >= 2 * FOUR_K_RGB8_BYTES, "the segment should hold two 4K rgb8 frames"
    max_message = shm_descriptor.findtext("dds:maxMessageSize", namespaces=DDS_NS)
    if max_message is not None:
        # Fast DDS refuses an SHM transport whose messages exceed its segment.
        assert FOUR_K_RGB8_BYTES <= int(max_message) <= segment_size

    defaults = [
        p for p in root.iterfind("dds:profiles/dds:participant", DDS_NS) if p.get("is_default_profile") == "true"
    ]
    assert len(defaults) == 1, "expected exactly one default participant profile"
    rtps = defaults[0].find("dds:rtps", DDS_NS)
    assert rtps is not None
    used = [t.text for t in rtps.iterfind("dds:userTransports/dds:transport_id", DDS_NS)]
    assert shm[0] in used
    assert set(used) <= set(descriptors), "userTransports names an undeclared transport"
    assert any(descriptors[t].findtext("dds:type", namespaces=DDS_NS) == "UDPv4" for t in used)
    assert rtps.findtext("dds:useBuiltinTransports", namespaces=DDS_NS) == "false"
