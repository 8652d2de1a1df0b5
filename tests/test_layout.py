"""The package's architecture, checked against its code: a folder per layer, arrows pointing
down only, no import cycles, and no module over 400 lines.

The layers, lowest first (a module imports only from its own package or a lower layer):
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kdlab"
MAX_LINES = 400

LAYERS = (
    ("runtime",),
    ("losses", "report", "cache"),
    ("metrics", "hooks", "bench"),
    ("models", "data"),
    ("distill", "quantize", "prune"),
    ("recipes", "grading", "plots", "widgets"),
    ("cli",),
    ("__main__",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def kdlab_imports(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every kdlab module ``path`` imports, at module level or inside a function."""
    package = module_name(path if path.name == "__init__.py" else path.parent, root)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # `from kdlab.x import y` imports kdlab.x.y when y is a module
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found |= {n for n in names if n == "kdlab" or n.startswith("kdlab.")}
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_top_level_name_has_a_layer():
    tops = {layer_of(m) for m in MODULES} - {None}
    assert tops <= set(RANK), f"put these in a layer of tests/test_layout.py: {tops - set(RANK)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_at_most_400_lines(module):
    lines = MODULES[module].read_text().count("\n")
    assert lines <= MAX_LINES, f"{module} has {lines} lines; split it (one idea per file)"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m)))
def test_imports_point_down_only(module):
    own = layer_of(module)
    upward = []
    for target in kdlab_imports(MODULES[module]):
        other = layer_of(target)
        if other is None:
            if target == "kdlab":
                upward.append(f"{target} (import the module you need, not the package root)")
            continue
        if other != own and RANK[other] >= RANK[own]:
            upward.append(f"{target} (layer {RANK[other]}; {module} is layer {RANK[own]})")
    assert not upward, f"{module} imports sideways or upwards: {upward}"


def test_no_import_cycles():
    graph = {
        module: {t for t in kdlab_imports(path) if t in MODULES and t != module}
        for module, path in MODULES.items()
    }
    # A package's __init__ re-exports its modules; an import of the package from one of its
    # own modules would run back into it, so those edges count too.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checks_can_fail(tmp_path):
    """The import reader sees an upward import and a cycle when there is one."""
    fake = tmp_path / "kdlab" / "losses" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from kdlab.distill import Distiller\n\ndef f():\n    import kdlab.cli\n")
    assert {"kdlab.distill", "kdlab.cli"} <= kdlab_imports(fake, tmp_path)
