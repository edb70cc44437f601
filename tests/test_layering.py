"""The dependency rule of the code base, checked on the source (README, Layout).

Layers, lowest first; a module may import its own layer and those below, never above:

0. ``clbench.core``: plain data and foundations (config, records, metrics, storage
   formulas, registries, errors, files); standard library only.
1. ``clbench.models``, ``clbench.multihead``: the networks.
2. ``benchmarks``, ``strategies``: libraries the harness uses; neither imports the other.
3. the harness: ``clbench.resolve``, ``clbench.plugins``, ``clbench.run``,
   ``clbench.report``, ``clbench.packed`` and the other subpackages. Serving a packed
   model (``clbench.packed`` but its exporter, and ``predict``) reaches only layers 0
   and 1: no Avalanche, nothing of the training machinery.
4. ``clbench.commands``, ``clbench.cli``: the command line.

Imports inside functions count (a cycle hidden by a deferred import is still a cycle);
imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clbench", "strategies", "benchmarks")
STDLIB = sys.stdlib_module_names


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_names(tree: ast.AST, package: str) -> set[str]:
    """Absolute names of every module ``tree`` imports (skipping TYPE_CHECKING blocks)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    """Our module -> our modules it imports."""
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = imported_names(ast.parse(path.read_text()), package)
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def external_imports(module: str) -> set[str]:
    """Top-level names of the third-party packages ``module`` imports."""
    path = next(
        p
        for p in (ROOT / f"{module.replace('.', '/')}.py", ROOT / module.replace(".", "/"))
        if p.exists()
    )
    path = path / "__init__.py" if path.is_dir() else path
    names = imported_names(ast.parse(path.read_text()), module.rpartition(".")[0])
    tops = {n.split(".")[0] for n in names}
    return {t for t in tops if t and t not in STDLIB and t not in PACKAGES}


def layer(module: str) -> int:
    if module.startswith("clbench.core"):
        return 0
    if module in ("clbench.models", "clbench.multihead"):
        return 1
    if module.split(".")[0] in ("benchmarks", "strategies"):
        return 2
    if module.startswith("clbench.commands") or module == "clbench.cli":
        return 4
    if module == "clbench":
        return 0
    return 3


GRAPH = import_graph()


def test_no_module_imports_a_higher_layer():
    violations = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer(target) > layer(module)
    ]
    assert not violations, "\n".join(violations)


def test_benchmarks_and_strategies_are_independent():
    violations = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if {module.split(".")[0], target.split(".")[0]} == {"benchmarks", "strategies"}
    ]
    assert not violations


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _package(module: str) -> str:
    """``clbench.run.runner`` -> ``clbench.run``; top-level modules stand for themselves."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "clbench" else parts[0]


def test_no_import_cycles_between_modules_or_subpackages():
    assert _cycles(GRAPH) == []
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            if _package(target) != _package(module):
                packages[_package(module)].add(_package(target))
    assert _cycles(packages) == []


def test_core_needs_only_the_standard_library():
    core = [m for m in GRAPH if m.startswith("clbench.core")]
    assert core
    assert {m: external_imports(m) for m in core if external_imports(m)} == {}


@pytest.mark.parametrize("plugin", ["strategies.packnet", "strategies.piggyback"])
def test_reusable_plugins_import_only_torch_and_avalanche(plugin):
    assert external_imports(plugin) <= {"torch", "avalanche"}
    assert GRAPH[plugin] == set()


def test_reporting_needs_no_training_machinery():
    for module, targets in GRAPH.items():
        if module.startswith("clbench.report"):
            assert not {t for t in targets if _package(t) in ("clbench.run", "clbench.plugins")}
            assert not external_imports(module) & {"torch", "avalanche"}, module


def _reached(module: str) -> set[str]:
    """``module`` and every module of ours it imports, directly or not."""
    reached, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in reached:
            reached.add(current)
            todo += GRAPH[current]
    return reached


@pytest.mark.parametrize("entry", ["clbench.packed", "clbench.commands.predict"])
def test_serving_a_packed_model_needs_no_training_machinery(entry):
    reached = _reached(entry)
    assert "clbench.packed.model" in reached
    training = {"clbench.run", "clbench.plugins", "clbench.multihead", "strategies", "benchmarks"}
    assert not {m for m in reached if _package(m) in training}
    assert "clbench.packed.export" not in reached
    assert not set().union(*map(external_imports, reached)) & {"avalanche"}


@pytest.mark.parametrize("command", ["list", "compare", "plot", "runs"])
def test_commands_that_do_not_train_import_neither_torch_nor_avalanche(tmp_path, command):
    """``compare`` and friends start fast: importing Avalanche alone takes ~10 s."""
    from tests.report.test_leaderboard import write_results

    write_results(tmp_path)
    argv = [command] if command == "list" else [command, str(tmp_path)]
    script = (
        "import sys\n"
        "from clbench.cli import main\n"
        f"code = main({argv!r})\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'avalanche'})\n"
        "print('HEAVY', heavy, code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert "HEAVY [] 0" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
