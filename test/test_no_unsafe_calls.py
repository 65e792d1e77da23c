"""Nothing that comes from a message, a parameter or a bag reaches eval, pickle or a shell."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCES = sorted((Path(__file__).resolve().parent.parent / "seg_perception").rglob("*.py")) + sorted(
    (Path(__file__).resolve().parent.parent / "launch").glob("*.py")
)
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill"}


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if isinstance(func, ast.Name) and name in FORBIDDEN_CALLS:  # builtins; model.eval() is fine
                found.append(f"{path.name}:{node.lineno} calls {name}()")
            if name in {"system", "popen"} and isinstance(func, ast.Attribute):
                found.append(f"{path.name}:{node.lineno} calls os.{name}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{path.name}:{node.lineno} runs a shell")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    return found


def test_sources_are_found() -> None:
    assert len(SOURCES) > 10


def test_no_eval_pickle_or_shell() -> None:
    problems = [p for path in SOURCES for p in _problems(path)]
    assert problems == []


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport subprocess\neval('1')\nsubprocess.run('ls', shell=True)\n")
    assert len(_problems(bad)) == 3
