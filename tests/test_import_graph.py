"""The import graph is a DAG that reads as the pipeline (issue 17): no import cycle between the package's
top-level units (subpackages and modules) or between its modules, counting imports inside functions too,
and the core pipeline's layers import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import algm_export
import algm_export.calibration

PACKAGE = "algm_export"

# The core pipeline, lowest first: a unit may import its own layer and the ones below, never one above.
# calibration comes after verify: the mixed-precision search judges candidate graphs with the INT8 verdict's
# tie and floor and runs them through runtime's session settings.
LAYERS = (
    {"errors", "console", "config", "artifacts", "ops_contract", "backends", "deployment", "outputs", "files",
     "photos", "preprocess", "datasets", "video", "flops"},
    {"merging"},
    {"models"},
    {"checkpoints"},
    {"export"},
    {"trt"},
    {"runtime"},
    {"verify"},
    {"calibration"},
    {"pipeline"},
    {"commands", "cli", "__main__"},
)


def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under each root (root name -> folder)."""
    modules = {}
    for name, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            dotted = ".".join((name, *parts))
            modules[dotted.removesuffix(".__init__")] = path
    return modules


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` (its file: ``path``) imports anywhere, functions included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # ``from pkg import module`` imports the module (a package's __init__ runs before any of its
            # modules anyway, so it is not an edge); ``from module import name`` imports the module.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # a name inside a module -> the module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def module_graph(roots: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules it imports, over ``roots``."""
    modules = module_files(roots)
    known = set(modules)
    return {module: imported_modules(module, path, known) for module, path in modules.items()}


def unit_of(module: str, package: str) -> str:
    """``algm_export.runtime.base`` -> ``runtime``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def unit_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The module graph collapsed to the package's top-level units (self-imports dropped)."""
    units: dict[str, set[str]] = {}
    for module, imports in graph.items():
        source = unit_of(module, package)
        units.setdefault(source, set()).update(unit_of(m, package) for m in imports)
        units[source].discard(source)
    return units


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (each an import cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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
            visit(node)
    return sorted(found)


def layer_violations(units: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import from a lower layer of :data:`LAYERS` into a higher one."""
    rank = {unit: level for level, members in enumerate(LAYERS) for unit in members}
    return sorted(f"{source} -> {target}" for source, targets in units.items() for target in targets
                  if source in rank and target in rank and rank[target] > rank[source])


def our_graph() -> dict[str, set[str]]:
    return module_graph({PACKAGE: Path(algm_export.__file__).parent,
                         f"{PACKAGE}.calibration": Path(algm_export.calibration.__file__).parent})


def test_no_import_cycle_between_units_or_modules():
    graph = our_graph()
    assert "algm_export.calibration.int8" in graph and "algm_export.runtime.sliding" in graph  # both roots read
    assert cycles(unit_graph(graph, PACKAGE)) == []
    assert cycles(graph) == []


def test_pipeline_layers_import_only_downwards():
    units = unit_graph(our_graph(), PACKAGE)
    assert {"models", "export", "trt", "runtime", "verify", "calibration"} <= set(units)
    assert layer_violations(units) == []


def test_a_cycle_inside_a_function_is_found(tmp_path):
    """The checks fail on the kinds of cycle issue 17 removed: two subpackages importing each other, one of
    the imports inside a function, and two modules of one subpackage doing the same."""
    package = tmp_path / "pkg"
    for folder in (package, package / "models", package / "runtime"):
        folder.mkdir()
        (folder / "__init__.py").write_text("")
    (package / "models" / "segmenter.py").write_text("from ..runtime.outputs import upsample\n")
    (package / "runtime" / "outputs.py").write_text("def upsample():\n    from ..models import segmenter\n")
    (package / "runtime" / "base.py").write_text("def segment():\n    from .sliding import SlidingWindow\n")
    (package / "runtime" / "sliding.py").write_text("from .base import Backend\n")
    graph = module_graph({"pkg": package})
    assert cycles(unit_graph(graph, "pkg")) == [["models", "runtime"]]
    assert ["pkg.runtime.base", "pkg.runtime.sliding"] in cycles(graph)
    assert layer_violations(unit_graph(graph, "pkg")) == ["models -> runtime"]


def test_the_version_is_the_packages():
    """console.VERSION (written into every output folder's marker) is pyproject.toml's version."""
    import tomllib

    from algm_export.console import VERSION

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert VERSION == pyproject["project"]["version"] == algm_export.__version__
