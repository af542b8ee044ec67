"""The single ``ccexpert`` entry point.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``run(args) -> int``. The backend's
own commands (``ccexpert.commands.*``) are listed in :data:`COMMANDS`. Further commands are discovered from the
entry-point group ``ccexpert.commands`` (:data:`GROUP`): each entry is ``name = "module.path"``; this project
registers its training commands there (``[project.entry-points."ccexpert.commands"]`` in pyproject.toml, modules
``ccexpert_training.commands.*``), so the backend names no training module. A discovered name that clashes with a
backend command is ignored.

Modules are imported lazily: only the chosen command's module is imported, so ``ccexpert --help`` stays fast and a
command's heavy dependencies (torch, deepspeed, fastapi) load only when that command runs. The one-line help of a
discovered command in ``ccexpert --help`` is its module's ``HELP = "..."`` string constant, read WITHOUT importing
the module: the module's file is located with ``importlib.util.find_spec`` (which imports only its parent packages)
and its top-level assignments are parsed with ``ast``. A module without a readable ``HELP`` is listed with its name
only. When the group is empty (the project's metadata is not installed, e.g. running from a bare source tree), a
command name that is not a backend command gets an error that says so, instead of argparse's "invalid choice".
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from importlib.metadata import distributions

GROUP = "ccexpert.commands"

# The backend's own commands: name -> (module, one-line help). Keep sorted.
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("ccexpert.commands.bench", "measure captioning throughput (pairs/s) against the FLOP ceiling"),
    "caption": ("ccexpert.commands.caption", "caption one before/after image pair"),
    "convert": ("ccexpert.commands.convert", "official CCExpert checkpoint -> this project's format"),
    "describe": ("ccexpert.commands.describe", "caption every chip of a before/after raster pair into a GeoPackage"),
    "facts": ("ccexpert.commands.facts", "change facts (object, action, count, where) of captions, one JSON line each"),
    "inspect": ("ccexpert.commands.inspect", "parameter count per component of a preset"),
    "package-plugin": ("ccexpert.commands.package_plugin", "build the installable QGIS plugin zip"),
    "report": ("ccexpert.commands.report", "HTML report (before/after thumbnails, captions) of a describe output"),
    "serve": ("ccexpert.commands.serve", "run the HTTP captioning service"),
}


def discovered_commands() -> dict[str, str]:
    """name -> module path of the commands registered in the ``ccexpert.commands`` entry-point group (not imported;
    backend command names win)."""
    found: dict[str, str] = {}
    # every distribution's entries, not entry_points(group=...): that one reads only the first metadata of each
    # distribution name on sys.path, and a stale ``ccexpert.egg-info`` in the working directory (sys.path[0] under
    # ``python -m``) would then hide the installed project's commands
    for dist in distributions():
        for entry in dist.entry_points:
            if entry.group == GROUP and entry.name not in COMMANDS and entry.name not in found:
                found[entry.name] = entry.module
    return dict(sorted(found.items()))


def module_help(module_name: str) -> str | None:
    """The module's top-level ``HELP = "..."`` string, read from its source without importing the module."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), spec.origin)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "HELP" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    return None


def _version() -> str:
    from ccexpert import __version__

    return f"ccexpert {__version__}"


def _not_installed(name: str) -> int:
    print(
        f"ccexpert: error: '{name}' is not a backend command, and no further commands are registered in the "
        f"'{GROUP}' entry-point group, so the training commands (ccexpert_training) are not installed. Install "
        "the project into this environment: pip install -e '.[train]'",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    discovered = discovered_commands()
    modules = {**{name: module for name, (module, _) in COMMANDS.items()}, **discovered}
    if argv and not argv[0].startswith("-") and argv[0] not in modules and not discovered:
        return _not_installed(argv[0])
    parser = argparse.ArgumentParser(prog="ccexpert", description="Change captioning for bi-temporal imagery.")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in modules else None
    module = None
    for name in sorted(modules):
        if name == chosen:
            try:
                module = importlib.import_module(modules[name])
            except ImportError as exc:
                print(
                    f"ccexpert: error: command '{name}' ({modules[name]}) cannot be imported: {exc}. Install its "
                    "dependencies (pip install -e '.[train]' for the training commands).",
                    file=sys.stderr,
                )
                return 2
            module.add_parser(subparsers)
        elif name in COMMANDS:
            subparsers.add_parser(name, help=COMMANDS[name][1])
        else:
            subparsers.add_parser(name, help=module_help(modules[name]))
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 0 if not argv else 2
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
