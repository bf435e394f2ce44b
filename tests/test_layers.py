"""Imports point one way: a module imports only from its own layer or the layers below it, and the packages
(components) import each other without a cycle. `stream` is a library of its own: it never imports
`spsp_pull`. The product (`spsp_pull`, `stream`) never imports `harness`, `bench` or `tests`; `harness` (our
server and the JS stack as child processes, which tests and benchmarks share) never imports `bench` or
`tests`, and `bench` never imports `tests`.

The graph is read from the source with `ast` (every import, also those inside functions and under
TYPE_CHECKING), so it holds for imports that run late as much as for those at the top of a module.
"""

from __future__ import annotations

import ast
import fnmatch
import pathlib
import tomllib
from collections.abc import Iterator
from functools import cache

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("spsp_pull", "stream", "harness", "bench")  # every module of these is read

# Lowest first. A component is a package (`spsp_pull.store`) or a top-level module (`spsp_pull.rates`).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("stream",),
    ("stream.connection",),
    ("stream.aio",),
    (
        "spsp_pull",  # the package itself (its version)
        "spsp_pull.config_error",
        "spsp_pull.domain",
        "spsp_pull.delivery_slots",
        "spsp_pull.http_problem",
        "spsp_pull.logging_setup",
        "spsp_pull.metrics",
        "spsp_pull.offline",
        "spsp_pull.outbound",
        "spsp_pull.rates",
        "spsp_pull.tls",
        "spsp_pull.web.negotiation",  # what a request's Accept header prefers (the API asks it too)
    ),
    ("spsp_pull.store",),
    ("spsp_pull.ilp", "spsp_pull.bridge", "spsp_pull.webhooks", "spsp_pull.offline_pointers"),
    ("spsp_pull.config",),
    (
        "spsp_pull.api",
        "spsp_pull.collector",
        "spsp_pull.payee",
        "spsp_pull.payment_pointer",
        "spsp_pull.subscription",
    ),
    ("spsp_pull.web",),  # the pages, on top of the API
    ("spsp_pull.api.app",),  # the application: the API's routes and the pages
    ("spsp_pull.server",),
    (
        "spsp_pull.cli",
        "spsp_pull.cli_client",  # what a command that talks to a server imports (not `cli` itself)
        "spsp_pull.cli_arguments",  # argument types every command module shares
        "spsp_pull.cli_errors",
        "spsp_pull.cli_payouts",
        "spsp_pull.collector.cli",
    ),
    ("harness",),
    ("bench",),
)
RANK = {component: rank for rank, layer in enumerate(LAYERS) for component in layer}
EXACT = {"spsp_pull"}  # holds only itself: a new module of spsp_pull needs a place of its own
PRODUCT = ("spsp_pull", "stream")  # what the wheel ships
FORBIDDEN = {
    "stream": ("spsp_pull", "harness", "bench", "tests"),
    "spsp_pull": ("harness", "bench", "tests"),
    "harness": ("bench", "tests"),
    "bench": ("tests",),
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "node_modules" not in path.parts  # harness/js*/: the JS stack's npm packages
    }


def imported(name: str, path: pathlib.Path, known: set[str]) -> Iterator[str]:
    """The project modules `name` imports (`from package import module` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in known else base


def component(module: str) -> str | None:
    """The longest component that holds `module`."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in RANK and (candidate not in EXACT or candidate == module):
            return candidate
    return None


@cache
def edges() -> frozenset[tuple[str, str, str, str]]:
    """(module, imported module, its component, the imported one's component) across components."""
    found = modules()
    known = set(found)
    result = set()
    for name, path in found.items():
        for target in imported(name, path, known):
            if target.split(".")[0] not in (*PACKAGES, "tests"):
                continue
            source_component, target_component = component(name), component(target)
            if source_component != target_component:
                result.add((name, target, source_component or "?", target_component or target))
    return frozenset(result)


def test_every_top_level_package_is_read() -> None:
    """A new package beside these would escape the rules below until it is named in PACKAGES."""
    top_level = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert top_level == set(PACKAGES)


def test_the_wheel_ships_only_the_product() -> None:
    """pyproject's package discovery takes `spsp_pull` and `stream`, never `harness`, `bench` or `tests`."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = {  # setuptools' `find`: packages (with __init__.py) whose names match a pattern, by fnmatch
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if any(fnmatch.fnmatchcase(path.parent.name, pattern) for pattern in find["include"])
        and not any(fnmatch.fnmatchcase(path.parent.name, pattern) for pattern in find.get("exclude", ()))
    }
    assert shipped == set(PRODUCT)


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(name for name in modules() if component(name) is None)
    assert not unplaced, f"place these in LAYERS: {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = sorted(
        f"{source} imports {target} ({source_component} is below {target_component})"
        for source, target, source_component, target_component in edges()
        if source_component in RANK
        and target_component in RANK
        and RANK[target_component] > RANK[source_component]
    )
    assert not upward, "\n".join(upward)


def test_libraries_do_not_import_what_is_built_on_them() -> None:
    wrong = sorted(
        f"{source} imports {target}"
        for source, target, _, _ in edges()
        if target.split(".")[0] in FORBIDDEN.get(source.split(".")[0], ())
    )
    assert not wrong, "\n".join(wrong)


def test_components_import_each_other_without_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for _, _, source_component, target_component in edges():
        graph.setdefault(source_component, set()).add(target_component)
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `graph` as its nodes in order (the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the path being walked, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return [*path[path.index(successor) :], successor]
            if successor not in state and (cycle := visit(successor)) is not None:
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_the_import_reader_sees_late_and_relative_imports(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "from . import sibling\n"
        "from ..other import thing\n"
        "def late():\n"
        "    from spsp_pull import cli\n"
        "    import stream.oer\n"
    )
    found = set(imported("spsp_pull.api.module", source, {"spsp_pull.api.sibling", "spsp_pull.cli"}))
    assert found == {"spsp_pull.api.sibling", "spsp_pull.other", "spsp_pull.cli", "stream.oer"}
