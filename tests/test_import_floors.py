"""Imports run one way, down the floors of STYLE.md: aiworker -> projects -> tasks -> agents ->
deployments (the drivers) -> mcpbridge. A module imports only its own floor and those below,
lazy imports inside functions included; and no two modules import each other, directly or
round a longer circle. Surfaces (views, APIs, the admin, URL confs, consumers, management
commands, the board's and charts' reads, the ASGI and WSGI entry points) stand on the top
floor whatever app holds them: they show what every floor has. Read from the source with
`ast`, so nothing is imported here."""

import ast
from pathlib import Path

from django.conf import settings

FLOORS = {"aiworker": 0, "projects": 1, "tasks": 2, "agents": 3, "deployments": 4, "mcpbridge": 5}
SURFACE_NAMES = {
    *("views", "apis", "admin", "admin_actions", "urls", "routing", "consumers", "charts"),
    *("asgi", "wsgi"),  # the entry points: they assemble every floor
}
SURFACE_PREFIXES = ("board_",)


def _modules() -> dict[str, Path]:
    root = Path(settings.BASE_DIR)
    found = {}
    for app in FLOORS:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known}


def _is_surface(module: str) -> bool:
    parts = module.split(".")
    return (
        parts[-1] in SURFACE_NAMES
        or parts[-1].startswith(SURFACE_PREFIXES)
        or "management" in parts
        or parts[0] == "mcpbridge"
    )


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _floor(module: str) -> int:
    return FLOORS[module.split(".")[0]]


def test_no_module_imports_a_floor_above_its_own():
    upward = sorted(
        f"{module} -> {imported}"
        for module, imports in _graph().items()
        if not _is_surface(module)
        for imported in imports
        if _floor(imported) > _floor(module)
    )
    assert upward == []


def test_no_import_circles():
    graph = _graph()
    # Tarjan's strongly connected components: any with two or more modules is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert circles == []
