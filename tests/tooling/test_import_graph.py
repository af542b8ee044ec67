"""No import circles between the project's modules, counting imports inside functions too (a function-level import
hides a circle from Python but not from the reader), and no file much over the size one job needs."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "ccexpert": REPO / "backend",
    "ccexpert_training": REPO / "training",
    "ccexpert_changes": REPO / "qgis_plugin",
}
MAX_LINES = 550
# files over the limit: only the model file, by transformers' one-model-file rule (DIM and difference branch
# included); this list may only shrink
OVER_LIMIT = {"backend/ccexpert/modeling_ccexpert.py"}


def modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports anywhere in its file (relative imports resolved)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = base[: len(base) - (node.level - 1)] if node.level else []
            module = ".".join([*prefix, node.module] if node.module else prefix)
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        for target in targets:
            while target and target not in known:  # `from pkg import mod` names a module; `import a.b.c` its parents
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    found = modules()
    known = set(found)
    graph = {name: imports_of(name, path, known) - _packages_of(name) for name, path in found.items()}
    assert cycles(graph) == []


def _packages_of(name: str) -> set[str]:
    """A module's own parent packages: importing them (their __init__) is not a circle through the module."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_the_checker_finds_a_circle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_files_have_one_job_in_size():
    over = {
        str(path.relative_to(REPO))
        for path in modules().values()
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert over <= OVER_LIMIT, f"files over {MAX_LINES} lines: {sorted(over - OVER_LIMIT)}"


# the run's constants, defined once in ccexpert_changes.core.driver / core.run_loop (issue 26: MAX_IN_FLIGHT was
# defined twice and the two front ends drifted apart)
RUN_CONSTANTS = {
    "MAX_IN_FLIGHT",
    "DEFAULT_BATCH",
    "JSON_OVERHEAD_BYTES",
    "ENVELOPE_BYTES",
    "HOLD_ROWS",
    "SEND",
    "PARTIAL_SUFFIX",
}


def definitions(path: Path, names: set[str]) -> set[str]:
    """The names of ``names`` that ``path`` assigns at module level (an import is not a definition)."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name) and leaf.id in names:
                    found.add(leaf.id)
    return found


def test_the_run_constants_are_defined_once():
    where: dict[str, list[str]] = {}
    for name, path in modules().items():
        for constant in definitions(path, RUN_CONSTANTS):
            where.setdefault(constant, []).append(name)
    twice = {constant: sorted(names) for constant, names in where.items() if len(names) > 1}
    assert twice == {}, f"run constants defined more than once: {twice}"
    assert set(where) == RUN_CONSTANTS  # each is defined somewhere (a rename is noticed here)


def test_the_constant_checker_sees_tuple_assignments(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("MAX_IN_FLIGHT, X = 16, 1\nfrom a import HOLD_ROWS\ndef f():\n    SEND = 1\n")
    assert definitions(source, RUN_CONSTANTS) == {"MAX_IN_FLIGHT"}


def test_the_plugin_reads_its_parameters_in_one_place():
    """Issue 26: BEFORE, AFTER and AOI were read twice each, in 8 functions; now ``planning.DescribeParameters.read``
    reads every parameter once and the rest of the plugin gets the dataclass."""
    readers = {}
    for path in sorted((REPO / "qgis_plugin" / "ccexpert_changes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("parameterAs"):
                readers.setdefault(str(path.relative_to(REPO)), set()).add(node.attr)
    # dialog.py's confirmation still reads OUTPUT itself (to count what a resume skips): left for the dialog's owner
    # report_algorithm.py is another algorithm (ccexpert:create_report) reading its own parameters once, in
    # processAlgorithm; it never reads describe_changes' parameters
    allowed = {
        "qgis_plugin/ccexpert_changes/planning.py",
        "qgis_plugin/ccexpert_changes/dialog.py",
        "qgis_plugin/ccexpert_changes/report_algorithm.py",
    }
    assert set(readers) <= allowed, readers
    # and the file and date shown under Before/After (the form's current layers, never a run's parameters)
    dialog_reads = readers.get("qgis_plugin/ccexpert_changes/dialog.py", set())
    assert dialog_reads <= {"parameterAsOutputLayer", "parameterAsRasterLayer"}
