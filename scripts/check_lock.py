"""Fails when a lock in requirements/ no longer matches what it was compiled from.

Each lock records `# inputs-sha256: <digest>` of its inputs (pyproject.toml's requirements and requires-python, and
the .in files), written by `scripts/lock.sh`; any change to those inputs without a new lock is refused, as uv's
`--locked` or poetry's content-hash do. Every requirement named in the inputs must also be pinned in the lock, and
where `packaging` can be imported (the project venv has it), every pin must satisfy its range.

Usage: python scripts/check_lock.py [--root DIR] [--print-digest LOCK]   (stdlib only; exit 1 on a mismatch)
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import tomllib

# lock file -> the files it is compiled from (pyproject.toml: its dependencies and every extra)
LOCKS = {
    "requirements/lock.txt": ("pyproject.toml", "requirements/build.in"),
    "requirements/qgis-lock.txt": ("requirements/qgis-tools.in",),
    # the same tools for the Pythons of the other QGIS releases tested (scripts/qgis_matrix.sh --lock SUITE)
    "requirements/qgis-lock-py313.txt": ("requirements/qgis-tools.in",),
    "requirements/qgis-lock-py314.txt": ("requirements/qgis-tools.in",),
}
DIGEST_LINE = re.compile(r"^# inputs-sha256: ([0-9a-f]{64})$", re.MULTILINE)
PIN_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
REFRESH = "run `bash scripts/lock.sh` and commit the new lock"
# the QGIS-release locks are compiled inside their Debian root folders, for those releases' Pythons
REFRESH_IN_ROOT = {
    "requirements/qgis-lock-py313.txt": "run `bash scripts/qgis_matrix.sh --lock trixie` and commit the new lock",
    "requirements/qgis-lock-py314.txt": "run `bash scripts/qgis_matrix.sh --lock forky` and commit the new lock",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements_of(root: Path, source: str) -> list[str]:
    """The requirement strings a lock input contributes (extras tagged with their name)."""
    path = root / source
    if path.name == "pyproject.toml":
        project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
        reqs = [f"requires-python {project.get('requires-python', '')}"]
        reqs += list(project.get("dependencies", []))
        for extra, items in sorted(project.get("optional-dependencies", {}).items()):
            reqs += [f"[{extra}] {item}" for item in items]
        return reqs
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def digest(root: Path, lock: str) -> str:
    text = "\n".join(f"{source}: {req}" for source in LOCKS[lock] for req in requirements_of(root, source))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def problems(root: Path, lock: str) -> list[str]:
    refresh = REFRESH_IN_ROOT.get(lock, REFRESH)
    path = root / lock
    if not path.is_file():
        return [f"{lock} is missing: {refresh}"]
    text = path.read_text(encoding="utf-8")
    found = DIGEST_LINE.search(text)
    out = []
    if found is None:
        out.append(f"{lock} has no '# inputs-sha256:' line: {refresh}")
    elif found.group(1) != digest(root, lock):
        out.append(f"{lock} was compiled from other requirements than {', '.join(LOCKS[lock])} hold now: {refresh}")
    pins = {normalise(name): version for name, version in PIN_LINE.findall(text)}
    try:
        from packaging.requirements import Requirement
    except ImportError:  # stdlib only (before any venv exists): names are still checked
        Requirement = None
    for source in LOCKS[lock]:
        for req in requirements_of(root, source):
            if req.startswith("requires-python"):
                continue
            spec = req.split("] ", 1)[1] if req.startswith("[") else req
            name = normalise(NAME.match(spec).group(1))
            if name not in pins:
                out.append(f"{lock}: {spec!r} (from {source}) is not pinned in the lock: {refresh}")
            elif Requirement is not None and not Requirement(spec).specifier.contains(pins[name], prereleases=True):
                out.append(f"{lock}: {name}=={pins[name]} does not satisfy {spec!r} (from {source}): {refresh}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--print-digest", choices=sorted(LOCKS), help="print a lock's inputs digest and exit")
    args = parser.parse_args(argv)
    if args.print_digest:
        print(digest(args.root, args.print_digest))
        return 0
    found = [problem for lock in LOCKS for problem in problems(args.root, lock)]
    for problem in found:
        print(f"check_lock: {problem}", file=sys.stderr)
    if not found:
        print(f"check_lock: ok ({', '.join(LOCKS)} match their inputs)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
