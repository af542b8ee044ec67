"""scripts/check_lock.py: the lock must match pyproject.toml and the .in files it was compiled from."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_lock.py"


@pytest.fixture
def copy(tmp_path) -> Path:
    """pyproject.toml and requirements/ in a temp folder (the repository itself is never edited)."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root)], capture_output=True, text=True, timeout=60
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_committed_lock_matches(copy):
    result = check(copy)
    assert result.returncode == 0, result.stderr
    assert "match their inputs" in result.stdout


def test_every_direct_requirement_is_pinned_exactly_once_with_hashes():
    lock = (REPO / "requirements" / "lock.txt").read_text()
    for name in ("torch==2.13.0+cpu", "transformers==", "tokenizers==", "deepspeed==", "fastapi==", "setuptools=="):
        assert f"\n{name}" in lock, name
    pins = [line for line in lock.splitlines() if "==" in line and not line.startswith((" ", "#"))]
    assert all(line.endswith("\\") for line in pins), "every pin carries --hash lines"
    assert "nvidia" not in lock and "cuda" not in lock.lower(), "the lock must not pull a CUDA build of torch"


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ('"transformers>=5.23,<6"', '"transformers>=5.23,<5.24"', "compiled from other requirements"),
        ('"pillow>=10",', '"pillow>=10",\n    "black>=24",', "'black>=24' (from pyproject.toml) is not pinned"),
        ('"pillow>=10",', '"pillow>=99",', "does not satisfy 'pillow>=99'"),
        ('"pytest>=8",', '"pytest>=8",\n    "isort>=5",', "'isort>=5' (from pyproject.toml) is not pinned"),
    ],
)
def test_edited_pyproject_fails_and_names_the_problem(copy, old, new, says):
    edit(copy / "pyproject.toml", old, new)
    result = check(copy)
    assert result.returncode == 1
    assert says in result.stderr and "scripts/lock.sh" in result.stderr


def test_edited_qgis_tools_fails(copy):
    edit(copy / "requirements" / "qgis-tools.in", "flake8>=7", "flake8>=7\nblack")
    result = check(copy)
    assert result.returncode == 1 and "qgis-lock.txt" in result.stderr


def test_lock_without_its_digest_fails(copy):
    lock = copy / "requirements" / "lock.txt"
    lock.write_text("\n".join(line for line in lock.read_text().splitlines() if not line.startswith("# inputs-")))
    result = check(copy)
    assert result.returncode == 1 and "no '# inputs-sha256:' line" in result.stderr


def test_description_edit_needs_no_new_lock(copy):
    edit(copy / "pyproject.toml", 'version = "', 'version = "9')
    assert check(copy).returncode == 0


def test_a_qgis_release_lock_says_how_it_is_refreshed(copy):
    """The Python 3.13/3.14 test-tool locks are compiled inside their Debian roots, not by scripts/lock.sh."""
    with (copy / "requirements" / "qgis-tools.in").open("a", encoding="utf-8") as f:
        f.write("pytest-xdist>=3\n")
    result = check(copy)
    assert result.returncode == 1
    assert "qgis-lock-py313.txt was compiled from other requirements" in result.stderr
    assert "run `bash scripts/qgis_matrix.sh --lock trixie`" in result.stderr
    assert "run `bash scripts/qgis_matrix.sh --lock forky`" in result.stderr
    assert "qgis-lock.txt was compiled from other requirements" in result.stderr  # Python 3.11's: scripts/lock.sh
