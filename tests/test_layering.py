"""Data flows one way: no module of hwface imports from a layer above its own (hwface.LAYERS)."""

from __future__ import annotations

import ast
from pathlib import Path

import hwface

PACKAGE = Path(hwface.__file__).parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported hwface module) of every import in a file, function-local ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hwface."):
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("hwface.")]
    return out


def test_every_module_belongs_to_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert tops == set(hwface.LAYERS), "add the new module to hwface.LAYERS (and its docstring)"


def test_no_import_goes_up_a_layer():
    rank = {name: i for i, name in enumerate(hwface.LAYERS)}
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer == "__init__":
            continue
        for line, module in _imports(path):
            target = module.split(".")[1]
            if rank[target] > rank[layer]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {layer} imports {module}")
    assert not upward, "\n".join(upward)


def test_no_function_is_over_80_lines():
    """Functions short enough to read at once (docstring included)."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "\n".join(long)
