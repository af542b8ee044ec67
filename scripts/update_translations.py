"""Regenerates the QGIS plugin's translation template from its ``tr()`` strings and compiles it:
``qgis_plugin/ccexpert_changes/i18n/ccexpert_changes_en.ts`` (every user-facing string, context "CCExpert", the
English text as its own finished translation) and ``ccexpert_changes_en.qm`` (``lrelease``, Debian's
qttools5-dev-tools). A translator copies the .ts to ``ccexpert_changes_<lang>.ts``, translates it (Qt Linguist),
and compiles it the same way; the plugin loads the .qm of the QGIS user locale.

Why not pylupdate5: it files a module-level ``tr()`` under the wrong context, and misses ``tr(CONSTANT)``; the
plugin's ``about.tr`` always uses the context "CCExpert". This walks the source with ``ast`` instead: string
literals in ``tr(...)`` calls, and module-level string constants handed to ``tr``.

Usage: python scripts/update_translations.py [--check]   (--check: fail when the .ts is out of date)
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "qgis_plugin" / "ccexpert_changes"
I18N = PLUGIN / "i18n"
TEMPLATE = I18N / "ccexpert_changes_en.ts"
CONTEXT = "CCExpert"


def _constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def messages() -> list[tuple[str, str, int]]:
    """(text, file relative to the plugin, line) of every tr() string, in file order, first occurrence only."""
    seen: dict[str, tuple[str, str, int]] = {}
    for path in sorted(PLUGIN.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name != "tr":
                continue
            arg = node.args[0]
            text = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", ""))
            if isinstance(text, str) and text not in seen:
                seen[text] = (text, str(path.relative_to(PLUGIN)), node.lineno)
    return sorted(seen.values(), key=lambda item: (item[1], item[2]))


def ts_text(items: list[tuple[str, str, int]]) -> str:
    out = ['<?xml version="1.0" encoding="utf-8"?>', "<!DOCTYPE TS>", '<TS version="2.1" language="en">', "<context>"]
    out.append(f"    <name>{CONTEXT}</name>")
    for text, filename, _line in items:
        out += [
            "    <message>",
            f'        <location filename="../{filename}"/>',  # no line: other edits do not churn the file
            f"        <source>{escape(text)}</source>",
            f"        <translation>{escape(text)}</translation>",
            "    </message>",
        ]
    out += ["</context>", "</TS>", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = ts_text(messages())
    if "--check" in argv:
        current = TEMPLATE.read_text(encoding="utf-8") if TEMPLATE.exists() else ""
        if current != text:
            print(f"{TEMPLATE} is out of date: run python scripts/update_translations.py", file=sys.stderr)
            return 1
        return 0
    I18N.mkdir(exist_ok=True)
    TEMPLATE.write_text(text, encoding="utf-8")
    lrelease = shutil.which("lrelease")
    if lrelease is None:
        print("lrelease not found (apt-get install qttools5-dev-tools); the .qm was not rebuilt", file=sys.stderr)
        return 1
    for ts in sorted(I18N.glob("*.ts")):
        subprocess.run([lrelease, "-silent", str(ts), "-qm", str(ts.with_suffix(".qm"))], check=True)
    print(f"update_translations: {len(messages())} strings in {TEMPLATE.relative_to(REPO)}, .qm compiled")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
