"""docs/architecture.md stays true: every funcsearch module is placed in its declared import
order, no import (lazy or TYPE_CHECKING ones included) reaches a later layer, and the module
graph has no cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "funcsearch"


def declared_layers() -> dict[str, int]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    layers: dict[str, int] = {}
    for line in block.group(1).splitlines():
        label, _, names = line.partition(":")
        for name in names.split():
            layers[name] = int(label.strip().removeprefix("L"))
    return layers


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """funcsearch modules imported anywhere in the file (reading __version__ from the root aside)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "funcsearch" and all(a.name == "__version__" for a in node.names):
                continue
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name == "funcsearch" or name.startswith("funcsearch.")}


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of the longest declared name that is ``module`` or a package holding it."""
    best = None
    for name, layer in layers.items():
        if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[0])):
            best = (name, layer)
    return None if best is None else best[1]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_declared_layer() -> None:
    layers = declared_layers()
    assert [m for m in MODULES if layer_of(m, layers) is None] == []


def test_no_import_reaches_a_later_layer() -> None:
    layers = declared_layers()
    wrong = []
    for module, path in MODULES.items():
        own = layer_of(module, layers)
        for target in imports(path):
            if target != module and not module.startswith(target + ".") and (layer_of(target, layers) or 0) > own:
                wrong.append(f"{module} (L{own}) imports {target} (L{layer_of(target, layers)})")
    assert wrong == []


def test_the_module_graph_has_no_cycle() -> None:
    graph = {m: {t for t in imports(p) if t in MODULES and t != m and not m.startswith(t + ".")}
             for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt])
                                     if nxt in trail else f"cycle through {nxt}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The walker finds a lazy import inside a function (so the tests above can fail)."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from funcsearch.cli import main\n")
    assert imports(source) == {"funcsearch.cli"}
    assert layer_of("funcsearch.cli", declared_layers()) > layer_of("funcsearch.expressions", declared_layers())
