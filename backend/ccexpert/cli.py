"""The single ``ccexpert`` entry point.

Each subcommand lives in its own module under ``ccexpert.commands`` (or ``ccexpert_training.commands``)
exposing ``add_parser(subparsers)`` and ``run(args) -> int``. Modules are imported lazily, so
``ccexpert --help`` stays fast and a command's heavy dependencies (torch, deepspeed, fastapi) load only
when that command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Keep sorted.
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("ccexpert.commands.bench", "measure captioning throughput (pairs/s) against the FLOP ceiling"),
    "build-dataset": ("ccexpert_training.commands.build_dataset", "change-detection set (A/B/label) -> records"),
    "caption": ("ccexpert.commands.caption", "caption one before/after image pair"),
    "convert": ("ccexpert.commands.convert", "official CCExpert checkpoint -> this project's format"),
    "describe": ("ccexpert.commands.describe", "caption every chip of a before/after raster pair into a GeoPackage"),
    "eval": ("ccexpert_training.commands.eval", "score predictions with the LEVIR-CC protocol"),
    "inspect": ("ccexpert.commands.inspect", "parameter count per component of a preset"),
    "package-plugin": ("ccexpert.commands.package_plugin", "build the installable QGIS plugin zip"),
    "predict": ("ccexpert_training.commands.predict", "write predictions for a dataset of pairs"),
    "preferences": ("ccexpert_training.commands.preferences", "build DNPO chosen/rejected preference pairs"),
    "report": ("ccexpert.commands.report", "HTML report (before/after thumbnails, captions) of a describe output"),
    "serve": ("ccexpert.commands.serve", "run the HTTP captioning service"),
    "synth": ("ccexpert_training.commands.synth", "generate the synthetic bi-temporal benchmark and GeoTIFF scenes"),
    "train": ("ccexpert_training.commands.train", "train a stage from a YAML config (HF Trainer + DeepSpeed)"),
    "train-demo": ("ccexpert_training.commands.train_demo", "rebuild the shipped demo model on synthetic data"),
}


def _version() -> str:
    from ccexpert import __version__

    return f"ccexpert {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="ccexpert", description="Change captioning for bi-temporal imagery.")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(module_name).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    if chosen is None:
        parser.print_help()
        return 0 if not argv else 2
    module = importlib.import_module(COMMANDS[chosen][0])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
