"""The package's layers: every module imports only from its own layer or below, with no circle.

Layers, bottom up (docs/ARCHITECTURE.md): (1) errors, schema, parsing, fileio, cfg; (2) ops; (3) nn,
data, eval; (4) losses, weights; (5) runtime; (6) the jobs: training, jobs, experiments, simulation;
(7) commands, cli, integrations. Imports are read from the source (AST), so an import inside a function
or under `TYPE_CHECKING` counts like any other; an import inside a function is allowed only for a
module outside lrnet (an optional dependency stays optional).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

import lrnet

PACKAGE = Path(lrnet.__file__).parent
LAYERS: list[tuple[str, ...]] = [
    ("__init__", "errors", "schema", "parsing", "fileio", "cfg"),
    ("ops",),
    ("nn", "data", "eval"),
    ("losses", "weights"),
    ("runtime",),
    ("training", "jobs", "experiments", "simulation"),
    ("commands", "cli", "integrations"),
]
LAYER_OF = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = ["lrnet", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def top_part(module: str) -> str:
    """The top-level part of lrnet a module belongs to (`lrnet.ops.nms` -> `ops`, `lrnet` -> `__init__`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


class Import:
    def __init__(self, source: str, target: str, line: int, in_function: bool) -> None:
        self.source, self.target, self.line, self.in_function = source, target, line, in_function

    def __str__(self) -> str:
        where = " (inside a function)" if self.in_function else ""
        return f"{self.source}:{self.line} imports {self.target}{where}"


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of an lrnet module in `path`, resolved to the module (not the name) it loads."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import module` loads the module; any other name comes from `base` itself
                names = [f"{base}.{alias.name}" for alias in child.names]
                targets = [t for t in names if t in modules]
                if len(targets) < len(names):
                    targets.append(base)
            else:
                visit(child, nested)
                continue
            for target in targets:
                if target == "lrnet" or target.startswith("lrnet."):
                    found.append(Import(module, target, child.lineno, in_function))

    visit(tree, False)
    return found


def layer_violations() -> list[str]:
    """Upward imports, imports inside functions, and circles (between modules and between packages)."""
    modules = all_modules()
    problems: list[str] = []
    graph: dict[str, set[str]] = defaultdict(set)
    package_graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for imp in imports_of(module, path, modules):
            if imp.target not in modules:
                problems.append(f"{imp}: no such module")
                continue
            src, dst = top_part(module), top_part(imp.target)
            if src not in LAYER_OF or dst not in LAYER_OF:
                problems.append(
                    f"{imp}: {src if src not in LAYER_OF else dst} is in no layer (add it to LAYERS)"
                )
                continue
            if LAYER_OF[dst] > LAYER_OF[src]:
                problems.append(
                    f"{imp}: upward, layer {LAYER_OF[src] + 1} ({src}) -> {LAYER_OF[dst] + 1} ({dst})"
                )
            if imp.in_function:
                problems.append(f"{imp}: import lrnet modules at the top of the file")
            if imp.target != module:
                graph[module].add(imp.target)
            if src != dst:
                package_graph[src].add(dst)
    problems += [f"circle: {' -> '.join(c)}" for c in circles(graph)]
    problems += [f"package circle: {' -> '.join(c)}" for c in circles(package_graph)]
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected component of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_import_goes_down_the_layers_without_circles():
    problems = layer_violations()
    assert not problems, "layer rule broken:\n" + "\n".join(problems)


def test_every_top_level_part_of_the_package_is_in_a_layer():
    parts = {top_part(m) for m in all_modules()}
    assert parts <= set(LAYER_OF), f"not in LAYERS: {sorted(parts - set(LAYER_OF))}"


def test_the_check_sees_an_upward_import_a_function_import_and_a_circle(tmp_path, monkeypatch):
    """The checker itself: a planted upward import, a function-level import and a circle are reported."""
    fake = tmp_path / "lrnet"
    (fake / "ops").mkdir(parents=True)
    (fake / "jobs").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text("")
    (fake / "ops" / "__init__.py").write_text("")
    (fake / "jobs" / "__init__.py").write_text("")
    (fake / "ops" / "a.py").write_text("from lrnet.jobs.b import X\n")
    (fake / "jobs" / "b.py").write_text(
        textwrap.dedent(
            """
            from lrnet.jobs import c

            def f():
                from lrnet.errors import E
            """
        )
    )
    (fake / "jobs" / "c.py").write_text("from lrnet.jobs.b import f\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    problems = "\n".join(layer_violations())
    assert "lrnet.ops.a:1 imports lrnet.jobs.b: upward, layer 2 (ops) -> 6 (jobs)" in problems
    assert "lrnet.jobs.b:5 imports lrnet.errors (inside a function)" in problems
    assert "circle: lrnet.jobs.b -> lrnet.jobs.c" in problems


def test_circles_finds_each_strongly_connected_component():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(circles(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert circles({"a": {"b"}, "b": set()}) == []


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """Each module imports first in a fresh interpreter: no import order hides a circle."""
    names = sorted(all_modules())
    script = textwrap.dedent(
        """
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m == "lrnet" or m.startswith("lrnet.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except ImportError as e:  # a missing optional dependency is not a layering problem
                if "circular import" in str(e) or (e.name or "").startswith("lrnet"):
                    failed.append(f"{name}: {e}")
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_modules_named_in_docs_exist():
    """The layout named in docs/ARCHITECTURE.md is the one on disk."""
    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    for part in LAYER_OF:
        if part != "__init__":
            assert importlib.util.find_spec(f"lrnet.{part}") is not None
            assert f"`{part}`" in text, f"docs/ARCHITECTURE.md does not name the layer part {part}"
