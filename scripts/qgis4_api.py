"""Checks the QGIS plugin against QGIS 4's Python API without running QGIS 4 (no Debian suite ships it).

``--used`` walks the plugin's source (``ast``) and prints, as JSON, every name it takes from ``qgis.core``,
``qgis.gui``, ``qgis.PyQt.*`` and ``processing``: the classes it imports and the attribute chains it reads on them
(methods, enums, enum members), split into *unconditional* names (the code needs them on every release) and
*optional* ones (read with ``getattr``/``hasattr`` and a string constant, so the code copes when they are absent:
the compat pattern of ``compat.py``).

Without ``--used`` it compares the unconditional names with ``tests/plugin/data/qgis4_api.json`` (class -> members
read from the QGIS 4 sources, with the file and commit each came from) and prints each name QGIS 4 lacks; exit code
1 when any is missing, 0 when none.

The data file lists, per class the plugin uses, the members checked in that class's ``.sip.in`` file of the Qt 6
build (``python/PyQt6/**``), and the members recorded as *absent* there (old names QGIS 4 dropped). A used name the
file does not list at all is reported too ("not recorded"): the check fails closed, so a new name is looked up in
the QGIS 4 source before it ships. Classes of Qt itself (``qgis.PyQt.QtCore.Qt`` ...) come from PyQt6, not QGIS:
for them only the module is checked here; ``tests/core/test_qt6_ready.py`` checks Qt 6's scoped enums and removals.

Usage: python scripts/qgis4_api.py [--used] [--plugin DIR] [--data FILE]
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "qgis_plugin" / "ccexpert_changes"
DATA = REPO / "tests" / "plugin" / "data" / "qgis4_api.json"
ROOTS = ("qgis.core", "qgis.gui", "qgis.PyQt", "processing")
OPTIONAL_CALLS = ("getattr", "hasattr")
QGIS4_VERSION_INTS = (40000, 49999)  # Qgis.versionInt() of the first and last 4.x
_COMPARE: dict[type, Callable[[int, int], bool]] = {
    ast.GtE: operator.ge,
    ast.Gt: operator.gt,
    ast.LtE: operator.le,
    ast.Lt: operator.lt,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _tracked(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in ROOTS)


def _bindings(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted name it stands for, for every import from a tracked module (any scope)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _tracked(node.module):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _tracked(alias.name):
                    bound[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
    return bound


def _chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None when the root is not a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _qgis4_takes_body(test: ast.expr, bound: dict[str, str], present: Callable[[str], bool]) -> bool | None:
    """Whether QGIS 4 runs the body of ``if test:``: ``hasattr(X, "name")`` (true when QGIS 4 has X.name) or
    ``Qgis.versionInt() <op> N`` (evaluated for the first and the last 4.x); None when the test is neither, or the
    answer differs within 4.x, so both branches count as used."""
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) and test.func.id == "hasattr":
        owner = _chain(test.args[0]) if len(test.args) == 2 else None
        attr = test.args[1] if len(test.args) == 2 else None
        if owner and owner[0] in bound and isinstance(attr, ast.Constant) and isinstance(attr.value, str):
            return present(".".join([bound[owner[0]], *owner[1:], attr.value]))
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.comparators[0], ast.Constant):
        left = test.left.func if isinstance(test.left, ast.Call) else test.left
        parts = _chain(left)
        limit = test.comparators[0].value
        version = bool(parts) and parts[0] in bound and parts[-1] in ("versionInt", "QGIS_VERSION_INT")
        compare = _COMPARE.get(type(test.ops[0]))
        if version and compare and isinstance(limit, int) and not isinstance(limit, bool):
            takes = {compare(v, limit) for v in QGIS4_VERSION_INTS}
            if len(takes) == 1:
                return takes.pop()
    return None


def _legacy_nodes(tree: ast.Module, bound: dict[str, str], present: Callable[[str], bool]) -> set[ast.AST]:
    """Every node inside a branch of a version test that QGIS 4 does not take."""
    legacy: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            takes = _qgis4_takes_body(node.test, bound, present)
            if takes is None:
                continue
            for stmt in node.orelse if takes else node.body:
                legacy.update(ast.walk(stmt))
    return legacy


def names_in_source(
    source: str, filename: str = "<source>", present: Callable[[str], bool] = lambda name: True
) -> dict[str, dict[str, list[str]]]:
    """{"used", "optional", "legacy"}: dotted names -> ["file:line", ...] that `source` takes from the tracked
    modules. `present(name)` says whether QGIS 4 has a name, to pick the branch of a ``hasattr`` test it runs."""
    tree = ast.parse(source, filename)
    bound = _bindings(tree)
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    legacy_nodes = _legacy_nodes(tree, bound, present)
    found: dict[str, dict[str, list[str]]] = {"used": {}, "optional": {}}
    legacy: dict[str, list[str]] = {}
    found["legacy"] = legacy

    def add(into: dict[str, list[str]], name: str, line: int) -> None:
        into.setdefault(name, []).append(f"{filename}:{line}")

    for node in ast.walk(tree):
        for kind, name, line in _node_names(node, bound, parents):
            add(legacy if node in legacy_nodes and kind == "used" else found[kind], name, line)
    for node, name in _inherited_names(tree, bound):
        add(legacy if node in legacy_nodes else found["used"], name, node.lineno)
    return found


def _inherited_names(tree: ast.Module, bound: dict[str, str]) -> list[tuple[ast.Attribute, str]]:
    """``self.x`` in a subclass of a tracked class, where the subclass does not define ``x``: the base's ``x``
    (e.g. ``self.parameterAsString`` in a QgsProcessingAlgorithm subclass is QgsProcessingAlgorithm.parameterAsString).
    Overridden methods are the subclass's own and are not checked."""
    out: list[tuple[ast.Attribute, str]] = []
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        bases = [parts for parts in map(_chain, cls.bases) if parts and parts[0] in bound]
        if not bases:
            continue
        base = ".".join([bound[bases[0][0]], *bases[0][1:]])
        own = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
        own |= {t.id for n in cls.body if isinstance(n, ast.Assign | ast.AnnAssign) for t in _targets(n)}
        attrs = [n for n in ast.walk(cls) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)]
        own |= {n.attr for n in attrs if n.value.id == "self" and isinstance(n.ctx, ast.Store)}
        out += [(n, f"{base}.{n.attr}") for n in attrs if n.value.id == "self" and n.attr not in own]
    return out


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.Name]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [t for t in targets if isinstance(t, ast.Name)]


def _node_names(node: ast.AST, bound: dict[str, str], parents: dict) -> list[tuple[str, str, int]]:
    """("used" or "optional", dotted name, line) for each tracked name this one node reads."""
    out: list[tuple[str, str, int]] = []
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and _tracked(node.module):
        out += [("used", f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    elif isinstance(node, ast.Import):
        out += [("used", alias.name, node.lineno) for alias in node.names if _tracked(alias.name)]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in OPTIONAL_CALLS:
        if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            owner = _chain(node.args[0])
            if owner and owner[0] in bound:
                out.append(("optional", ".".join([bound[owner[0]], *owner[1:], node.args[1].value]), node.lineno))
    elif isinstance(node, ast.Attribute) and not isinstance(parents.get(node), ast.Attribute):
        parts = _chain(node)
        if parts and parts[0] in bound:
            out.append(("used", ".".join([bound[parts[0]], *parts[1:]]), node.lineno))
    return out


def used_names(plugin: Path = PLUGIN, present: Callable[[str], bool] = lambda name: True) -> dict[str, dict]:
    """{"used", "optional", "legacy"}: {name: [where]} over every ``.py`` file of the plugin, names sorted."""
    merged: dict[str, dict[str, list[str]]] = {"used": {}, "optional": {}, "legacy": {}}
    for path in sorted(plugin.rglob("*.py")):
        rel = str(path.relative_to(plugin.parent))
        for kind, found in names_in_source(path.read_text(encoding="utf-8"), rel, present).items():
            for name, where in found.items():
                merged[kind].setdefault(name, []).extend(where)
    return {kind: dict(sorted(names.items())) for kind, names in merged.items()}


def _split(name: str, modules: Iterable[str]) -> tuple[str, list[str]] | None:
    """ "qgis.core.Qgis.MessageLevel.Info" -> ("qgis.core", ["Qgis", "MessageLevel", "Info"]); longest module."""
    for module in sorted(modules, key=len, reverse=True):
        if name == module:
            return module, []
        if name.startswith(module + "."):
            return module, name[len(module) + 1 :].split(".")
    return None


def _lookup(name: str, data: dict) -> tuple[str | None, dict | None]:
    """(problem or None, the entry that vouches for the name or None)."""
    modules: dict[str, dict] = data["modules"]
    found = _split(name, modules)
    if found is None:
        return f"{name}: module not in QGIS 4's list", None
    module, parts = found
    entry = modules[module]
    names = entry.get("names")
    if not parts or names is None:
        return None, entry  # the module itself; Qt's own classes are checked by tests/core/test_qt6_ready.py
    cls = names.get(parts[0])
    if cls is None:
        return f"{name}: {module}.{parts[0]} not recorded in the QGIS 4 data file", None
    members = set(cls.get("members", []))
    absent = set(cls.get("absent", []))
    for depth in range(1, len(parts)):
        member = ".".join(parts[1 : depth + 1])
        if member in absent:
            return f"{name}: {parts[0]}.{member} is gone in QGIS 4 ({cls['source']} @ {cls['commit'][:10]})", None
        if member not in members:
            for base in cls.get("bases", []):  # inherited: QgsMapLayerAction.parent is QAction's (Qt's own)
                problem, entry = _lookup(".".join([base, *parts[depth:]]), data)
                if problem is None:
                    return None, entry
            return f"{name}: {parts[0]}.{member} not recorded in the QGIS 4 data file", None
    return None, cls


def missing(used: Iterable[str], data: dict) -> list[str]:
    """Each used name QGIS 4 lacks (or that the data file does not record), with the reason."""
    return [problem for problem in (_lookup(name, data)[0] for name in used) if problem]


def unpinned(used: Iterable[str], data: dict) -> list[str]:
    """Used names whose only evidence is not from a QGIS 4 version of the file (``checked: unpinned``)."""
    return [name for name in used if (entry := _lookup(name, data)[1]) and entry.get("checked") == "unpinned"]


def load(path: Path = DATA) -> dict:
    """The QGIS 4 API data file; ValueError with the reason when it is unreadable or has no ``modules``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the QGIS 4 API data file {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
        raise ValueError(f"{path} has no 'modules' table")
    for module, entry in data["modules"].items():
        if not isinstance(entry, dict) or not (entry.get("names") is None or isinstance(entry["names"], dict)):
            raise ValueError(f"{path}: module {module} needs a 'names' table (or null for Qt's own modules)")
    return data


def check(plugin: Path = PLUGIN, data: dict | None = None) -> tuple[dict[str, dict], list[str]]:
    """(names the plugin uses, the problems): each unconditional name QGIS 4 lacks or the data file omits."""
    data = load() if data is None else data
    names = used_names(plugin, present=lambda name: not missing([name], data))
    return names, missing(names["used"], data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--used", action="store_true", help="print the names the plugin uses, as JSON")
    parser.add_argument("--plugin", type=Path, default=PLUGIN)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    try:
        data = load(args.data)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    names, problems = check(args.plugin, data)
    if args.used:
        print(json.dumps(names, indent=1))
        return 0
    for problem in problems:
        where = ", ".join(names["used"][problem.split(":")[0]][:3])
        print(f"missing: {problem}  [{where}]")
    for name in unpinned(names["used"], data):
        print(f"unpinned: {name} (evidence not from a QGIS 4 version of the file; see the data file)")
    source = data.get("source", {})
    print(
        f"{len(names['used'])} names used ({len(names['optional'])} optional, {len(names['legacy'])} legacy-only); "
        f"{len(problems)} missing in QGIS 4 ({source.get('repository', '?')}, read {source.get('read_on', '?')})"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
