"""The import structure of the four programs' packages: no cycles, and the dependency rules of
docs/architecture.md.

Every module under server/, agent_app/, recorder_service/ and tandem_protocol/ is parsed with
``ast`` (nothing is imported). An import counts wherever it is written: at module level, inside a
function (a lazy import), and inside ``if TYPE_CHECKING:``. Lazy and type-only imports are the two
usual ways of hiding a cycle rather than removing it; the dependency between the two modules is
there either way, and it is the dependency this test is about.

``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``. A package's
``__init__`` is an edge only when named (``from a.b import name``): importing ``a.b.c`` runs
``a/b/__init__.py`` too, but ours import nothing that could close a cycle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("server", "agent_app", "recorder_service", "tandem_protocol")

# docs/architecture.md, "Dependency rule": these import neither Qt, nor the web framework, nor the
# database, directly or through any module of ours they import.
PURE = (
    "server.sip",
    "server.rtp",
    "server.voice",
    "server.callmedia",
    "server.calls.lifecycle",
    "server.policy",
    "agent_app.model",
    "agent_app.view",
    "recorder_service.controller",
    "recorder_service.clock",
)
QT_WEB_DB = frozenset(
    {"PySide6", "shiboken6", "fastapi", "starlette", "uvicorn", "jinja2", "sqlalchemy", "alembic", "sqlite3"}
)


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    ours: set[str] = field(default_factory=set)  # modules of the four packages
    outside: set[str] = field(default_factory=set)  # top-level names of anything else


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):  # every import, at any depth (functions, TYPE_CHECKING, try)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


@cache
def graph() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for program in PROGRAMS:
        for path in sorted((ROOT / program).rglob("*.py")):
            name, is_package = _module_name(path)
            modules[name] = Module(name, path, is_package)
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _ours(target, modules)
                if found is not None:
                    if found != module.name:
                        module.ours.add(found)
                elif target.split(".")[0] not in PROGRAMS:
                    module.outside.add(target.split(".")[0])
    return modules


def _ours(target: str, modules: dict[str, Module]) -> str | None:
    """The deepest module of ours that ``target`` names (``a.b.name`` → ``a.b``)."""
    parts = target.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _unit(module: Module) -> str:
    """The node of the package graph: a module's package; a module directly in a program's root
    (server/cli.py, server/settings.py) is a unit of its own, as the root is no package of one
    concept but where the programs' entry points and shared small modules live."""
    if module.is_package:
        return module.name
    package = module.name.rpartition(".")[0]
    return module.name if "." not in package else package


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
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


def _explain(components: list[list[str]], edges: dict[str, dict[str, list[str]]]) -> str:
    lines = []
    for component in components:
        lines.append(" ↔ ".join(component))
        for a in component:
            for b in component:
                for why in edges.get(a, {}).get(b, [])[:3]:
                    lines.append(f"    {a} → {b}: {why}")
    return "\n".join(lines)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The walker finds module-level, relative-free ``from`` imports, lazy imports inside
    functions and type-only ones (else the tests below could pass by seeing nothing)."""
    modules = graph()
    assert len(modules) > 150
    assert "server.sip.dialog" in modules["server.sip.uas"].ours
    assert "server.rtp.session" in modules["server.callmedia.media"].ours  # lazy, in a function
    assert "server.rtp.session" in modules["server.rtp.workers.worker"].ours  # type-only and lazy
    assert "PySide6" in modules["agent_app.main"].outside
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_cycle_between_packages() -> None:
    modules = graph()
    edges: dict[str, dict[str, list[str]]] = {}
    for module in modules.values():
        for target in module.ours:
            a, b = _unit(module), _unit(modules[target])
            if a != b:
                edges.setdefault(a, {}).setdefault(b, []).append(f"{module.name} imports {target}")
    components = _cycles({a: set(bs) for a, bs in edges.items()})
    assert not components, "packages importing each other:\n" + _explain(components, edges)


def test_no_cycle_between_modules() -> None:
    modules = graph()
    edges = {name: set(module.ours) for name, module in modules.items()}
    components = _cycles(edges)
    explained = {a: {b: ["import"] for b in edges[a]} for a in edges}
    assert not components, "modules importing each other:\n" + _explain(components, explained)


def test_media_does_not_import_signalling() -> None:
    """The RTP stack, the worker processes, the voice files and the call media know nothing of
    SIP: the SIP side drives them through ``server.callmedia``."""
    wrong = [
        f"{module.name} imports {target}"
        for module in graph().values()
        if module.name.startswith(("server.rtp", "server.voice", "server.callmedia"))
        for target in module.ours
        if target.startswith("server.sip")
    ]
    assert not wrong, "\n".join(wrong)


def _reach(name: str) -> Iterator[tuple[str, list[str]]]:
    """Every module ``name`` imports, directly or not, with the chain that leads there."""
    modules = graph()
    seen = {name}
    todo = [(name, [name])]
    while todo:
        current, chain = todo.pop()
        yield current, chain
        for target in sorted(modules[current].ours):
            if target not in seen:
                seen.add(target)
                todo.append((target, [*chain, target]))


def test_pure_parts_import_no_qt_web_or_database() -> None:
    modules = graph()
    wrong = []
    for name in modules:
        if not any(name == p or name.startswith(p + ".") for p in PURE):
            continue
        for reached, chain in _reach(name):
            for bad in sorted(modules[reached].outside & QT_WEB_DB):
                wrong.append(" → ".join([*chain, bad]))
    assert not wrong, "\n".join(wrong)


def test_tandem_protocol_is_stdlib_only() -> None:
    wrong = [
        f"{module.name} imports {name}"
        for module in graph().values()
        if module.name.startswith("tandem_protocol")
        for name in module.outside
        if name not in sys.stdlib_module_names and name != "__future__"
    ]
    wrong += [
        f"{module.name} imports {target}"
        for module in graph().values()
        if module.name.startswith("tandem_protocol")
        for target in module.ours
        if not target.startswith("tandem_protocol")
    ]
    assert not wrong, "\n".join(wrong)


def test_programs_share_only_tandem_protocol() -> None:
    """The agent's desktop and recorder never import the server (nor each other), and the server
    none of them: what they share is tandem_protocol."""
    wrong = [
        f"{module.name} imports {target}"
        for module in graph().values()
        for target in module.ours
        if target.split(".")[0] not in (module.name.split(".")[0], "tandem_protocol")
    ]
    assert not wrong, "\n".join(wrong)
