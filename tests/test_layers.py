"""The package's layers: a module imports only from its own layer and the ones below it.

Lowest first: foundations (errors, files, lazy, plugin machinery) -> data -> models ->
protectors -> attacks and adversaries -> measurements -> results -> runner and executors ->
report and compare -> commands. Every import counts, a deferred one inside a function and a
``"module:attr"`` string included; only imports under ``if TYPE_CHECKING:`` (types for hints,
never executed) are free. A module-level import cycle is refused too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "veilbench"

#: Lowest first; the name a module is placed by is its first part under ``veilbench``.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundations",
        {
            "__init__", "errors", "files", "lazy", "device", "progress", "hookspecs",
            "registry", "plugins", "weights", "veilcrypt", "naming", "passphrase", "outdir",
            "stats",
        },
    ),
    ("data", {"data"}),
    ("models", {"models", "training"}),
    ("protectors", {"protectors", "veilfile", "veilarchive"}),
    ("attacks and adversaries", {"attacks", "adversaries"}),
    ("measurements", {"measurements", "evaluation", "verification"}),
    ("results", {"results"}),
    ("runner and executors", {"runner", "executors", "config", "validation"}),
    ("report and compare", {"report", "compare", "leaderboard"}),
    ("commands", {"commands", "testing", "plugin_docs"}),
]  # fmt: skip

#: (importing module, the place it imports from) pairs that still go upward, each to be removed.
KNOWN: set[tuple[str, str]] = {
    ("veilbench.evaluation.protected", "executors"),
    ("veilbench.runner", "report"),
    ("veilbench.plugins", "models"),
}


def _layer_of() -> dict[str, int]:
    return {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported veilbench module, line, at module level) for every import in ``path``."""
    name = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    top = {id(n) for n in tree.body}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:  # ``from veilbench.data import images`` is a module
                sub = f"{base}.{alias.name}"
                target = sub if _is_module(sub) else base
                found.append((target, node.lineno, id(node) in top))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            module, sep, attr = node.value.partition(":")
            if sep and attr and module.startswith("veilbench.") and _is_module(module):
                found.append((module, node.lineno, False))
    return [(m, line, top_level) for m, line, top_level in found if m.split(".")[0] == "veilbench"]


def _place(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer() -> None:
    layer = _layer_of()
    missing = sorted({_place(_module_name(p)) for p in _sources()} - set(layer))
    assert not missing, f"place these in a layer of tests/test_layers.py LAYERS: {missing}"


def test_nothing_imports_upward() -> None:
    layer = _layer_of()
    upward: set[str] = set()
    for path in _sources():
        importer = _module_name(path)
        for imported, line, _ in _imports(path):
            a, b = _place(importer), _place(imported)
            if a not in layer or b not in layer or layer[b] <= layer[a]:
                continue
            if (importer, b) in KNOWN:
                continue
            upward.add(
                f"{path.relative_to(PACKAGE.parent)}:{line}: {importer} "
                f"({LAYERS[layer[a]][0]}) imports {imported} ({LAYERS[layer[b]][0]})"
            )
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(upward))


def test_no_module_level_import_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _sources():
        importer = _module_name(path)
        for imported, _, top_level in _imports(path):
            if top_level and imported != importer and not importer.startswith(imported + "."):
                graph[importer].add(imported)
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)
