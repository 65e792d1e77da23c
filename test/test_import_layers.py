"""The architecture holds: every import of the package points down the layer table of `seg_perception.layers`
(its own layer or one listed before it), and rclpy, message packages, TensorRT, pycuda, Ray and torch are
imported only where that table confines them. Lazy imports inside functions count as much as top-level ones.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

import pytest

from seg_perception.layers import CONFINED_IMPORTS, LAYERS

PACKAGE = Path(__file__).resolve().parent.parent / "seg_perception"


def _place(path: Path) -> str:
    """`core/model_spec`, `cli`: where a file sits under seg_perception/, without .py."""
    return path.relative_to(PACKAGE).with_suffix("").as_posix()


def _rank(place: str) -> int:
    """The index in LAYERS of the layer holding `place` (a folder or module name under seg_perception/)."""
    top = place.split("/", 1)[0]
    for index, (_, members, _) in enumerate(LAYERS):
        if top in members:
            return index
    raise LookupError(f"seg_perception/{place}.py belongs to no layer of seg_perception.layers.LAYERS")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every (line, module) imported by the file, top level or inside functions; relative imports resolved."""
    found: list[tuple[int, str]] = []
    package = ["seg_perception", *_place(path).split("/")[:-1]]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "seg_perception":  # `from seg_perception import ros`: the names are the modules
                found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _internal_place(module: str) -> str | None:
    """seg_perception.core.model_spec -> core/model_spec; None for a third-party module."""
    parts = module.split(".")
    if parts[0] != "seg_perception" or len(parts) == 1:
        return None
    return "/".join(parts[1:])


def _files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def layering_violations() -> list[str]:
    problems = []
    for path in _files():
        here = _place(path)
        for line, module in _imports(path):
            target = _internal_place(module)
            if target is None or target.split("/", 1)[0] == here.split("/", 1)[0]:
                continue
            try:
                if _rank(target) > _rank(here):
                    problems.append(f"seg_perception/{here}.py:{line} imports {module}: a higher layer")
            except LookupError as exc:
                problems.append(str(exc))
    return problems


def confinement_violations() -> list[str]:
    problems = []
    for path in _files():
        here = _place(path)
        for line, module in _imports(path):
            top = module.split(".", 1)[0]
            for pattern, places in CONFINED_IMPORTS.items():
                if fnmatch(top, pattern) and not any(here == p or here.startswith(p + "/") for p in places):
                    problems.append(f"seg_perception/{here}.py:{line} imports {module}: only {', '.join(places)} may")
    return problems


def test_every_file_belongs_to_a_layer() -> None:
    unplaced = []
    for path in _files():
        try:
            _rank(_place(path))
        except LookupError as exc:
            unplaced.append(str(exc))
    assert not unplaced, "\n".join(unplaced)


def test_imports_point_down_the_layers() -> None:
    problems = layering_violations()
    assert not problems, "\n".join(problems)


def test_ros_tensorrt_and_ray_are_imported_only_where_the_table_allows() -> None:
    problems = confinement_violations()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from seg_perception.fleet.ray_pool import x\n", "imports seg_perception.fleet.ray_pool: a higher layer"),
        ("def f():\n    from ..ros import messages\n", "imports seg_perception.ros: a higher layer"),
        ("import rclpy\n", "imports rclpy: only ros, bag/replay, bench, node may"),
        ("def f():\n    from sensor_msgs.msg import Image\n", "imports sensor_msgs.msg: only"),
    ],
)
def test_the_checker_sees_an_upward_or_confined_import(
    source: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A planted core module that reaches up (at top level or lazily, absolute or relative) is reported."""
    planted = PACKAGE / "core" / "_planted_for_test.py"
    monkeypatch.setattr("test_import_layers._files", lambda: [planted])
    original = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        return source if self == planted else original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    found = layering_violations() + confinement_violations()
    assert any(expected in p and "core/_planted_for_test.py" in p for p in found), found


def import_cycles() -> list[list[str]]:
    """Cycles in the module graph (lazy imports included): each as the list of modules around it."""
    modules = {_place(p): p for p in _files()}

    def resolve(target: str) -> str | None:
        while target and target not in modules:  # `core.model_spec.ModelSpec` -> core/model_spec
            target = target.rpartition("/")[0]
        return target or None

    graph = {
        here: sorted({t for _, m in _imports(p) if (i := _internal_place(m)) and (t := resolve(i)) and t != here})
        for here, p in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    cycles = import_cycles()
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _private_imports(path: Path) -> list[str]:
    """`module.name` for each underscored (not dunder) name `path` imports from another module of the package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seg_perception"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_") and a.name[1:2] != "_"]
    return found


def test_core_modules_share_only_public_names() -> None:
    """core/ is the library other layers build on: what one core module uses of another is public API
    (synthetic/ still shares private scene internals between its own files; not checked here)."""
    private = {
        f"{_place(path)}: {name}"
        for path in sorted((PACKAGE / "core").rglob("*.py"))
        for name in _private_imports(path)
    }
    assert private == set(), sorted(private)
