"""scripts/qgis_matrix.sh without building a root folder: bad arguments, the per-release result line (failures,
crashes and timeouts are failures), and no mount left behind when a run fails (the roots themselves are exercised by
running the script; README "QGIS releases tested")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "qgis_matrix.sh"
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="{errors}"
 failures="{failures}" skipped="{skipped}" tests="{tests}"></testsuite></testsuites>"""


def bash(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, **env}, cwd=REPO
    )


def report(tmp_path: Path, rc: int, tests=85, failures=0, errors=0, skipped=1) -> tuple[int, str]:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.format(tests=tests, failures=failures, errors=errors, skipped=skipped), encoding="utf-8")
    results = tmp_path / "results.txt"
    done = bash(
        f'source "{SCRIPT}"; RESULTS="{results}"; report forky "QGIS 3.44.15 (Python 3.14.8)" {rc} "{junit}"',
    )
    return done.returncode, results.read_text(encoding="utf-8").strip()


def test_unknown_suite_is_refused_before_anything_is_built(tmp_path):
    cache = tmp_path / "cache"
    done = bash(f'bash "{SCRIPT}" bullseye', CCEXPERT_QGIS_CACHE=str(cache))
    assert done.returncode == 2
    assert "unknown suite 'bullseye'" in done.stderr and "bookworm trixie forky" in done.stderr
    assert not cache.exists()


def test_desktop_mode_needs_a_suite_and_a_picture():
    done = bash(f'bash "{SCRIPT}" --desktop forky')
    assert done.returncode == 2 and "usage" in done.stderr


def test_a_passing_suite_gives_one_line_and_success(tmp_path):
    rc, line = report(tmp_path, 0)
    assert rc == 0
    assert line == "QGIS 3.44.15 (Python 3.14.8): 84 passed, 0 failed, 1 skipped"


def test_failures_and_errors_count_as_failed(tmp_path):
    rc, line = report(tmp_path, 1, failures=1, errors=1)
    assert rc != 0
    assert line.endswith(": 82 passed, 2 failed, 1 skipped")


def test_a_crash_at_exit_fails_the_suite_even_when_every_test_passed(tmp_path):
    """QGIS 3.44 used to abort at exit after the last test (signal 6): all tests green, the run still failed."""
    rc, line = report(tmp_path, 134)
    assert rc != 0
    assert line.endswith("84 passed, 0 failed, 1 skipped -- crashed (exit 134, signal 6)")


def test_a_timeout_and_a_missing_report_fail(tmp_path):
    rc, line = report(tmp_path, 124)
    assert rc != 0 and "timed out" in line
    results = tmp_path / "r.txt"
    done = bash(f'source "{SCRIPT}"; RESULTS="{results}"; report trixie "" 139 "{tmp_path / "none.xml"}"')
    assert done.returncode != 0
    assert results.read_text().strip() == "QGIS ? (trixie): no test report -- crashed (exit 139, signal 11)"


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_no_mount_outlives_a_failed_run(tmp_path):
    """A root folder that cannot run (no Python in it) fails the run; its /proc, /sys, /dev mounts are gone after."""
    cache = tmp_path / "cache"
    root = cache / "trixie"
    for sub in ("proc", "sys", "dev/pts", "dev/shm", "tmp"):
        (root / sub).mkdir(parents=True)
    key = bash(f'source "{SCRIPT}"; key_of trixie "$MIRROR" "${{PACKAGES[@]}}"').stdout.strip()
    (root / f".ccexpert-apt-{key}").touch()  # "built": the run goes straight to mounting and fails at the venv
    done = bash(f'bash "{SCRIPT}" trixie', CCEXPERT_QGIS_CACHE=str(cache))
    assert done.returncode != 0
    assert "QGIS ? (trixie): not run" in done.stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(cache) not in mounts
