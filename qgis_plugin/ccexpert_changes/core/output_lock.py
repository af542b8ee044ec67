"""One run per output: a lock file next to the GeoPackage, for the plugin and ``ccexpert describe`` (stdlib only).

Two runs on one output used to race: the second run's staged file replaced the first run's finished output, and
the first still reported "64 captioned" and exited 0 (issue 24). A run now takes ``.NAME.gpkg.lock`` before it
writes anything and gives it back on every way out (``with``, or :meth:`OutputLock.release` in a ``finally``). The
lock holds the owner's host, process id and a token; it is created complete in one step (written to a private file,
then hard-linked to the lock name, which fails when the name exists), so no run ever reads half a lock.

A lock whose process is gone (same host, the process id no longer runs: a run killed with SIGKILL or a crashed
QGIS) is stale and taken over; a lock of another host cannot be checked and is refused with the path to delete.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from pathlib import Path
from types import TracebackType

LOCK_SUFFIX = ".lock"


class OutputBusy(ValueError):
    """Another run is writing this output (a ValueError: the caller's input is what cannot go on)."""


def lock_path(target: str | Path) -> Path:
    target = Path(target)
    return target.with_name(f".{target.name}{LOCK_SUFFIX}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one we may not signal counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours (EPERM)
        return True
    return True


class OutputLock:
    """``with OutputLock(path):`` or ``lock = OutputLock(path).acquire()`` ... ``lock.release()``."""

    def __init__(self, target: str | Path):
        self.target = Path(target)
        self.path = lock_path(self.target)
        self.token = uuid.uuid4().hex
        self.held = False
        self.took_over: dict | None = None  # the stale lock this run replaced, if any

    def _owner(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "run": self.token}

    def acquire(self) -> OutputLock:
        """Take the lock or raise :class:`OutputBusy` naming who holds it; OSError when the folder is not
        writable."""
        for _ in range(3):  # a stale lock taken over, then a race lost to another run: at most a few rounds
            if self._create():
                self.held = True
                return self
            owner = self._read()
            if owner is None:  # gone between our try and the read: try again
                continue
            if not self._stale(owner):
                raise OutputBusy(self._busy_message(owner))
            if self._break(owner):
                self.took_over = owner
        raise OutputBusy(f"{self.target}: another run keeps taking the lock {self.path}; try again")

    def _create(self) -> bool:
        private = self.path.with_name(f"{self.path.name}.{self.token}")
        try:
            private.write_text(json.dumps(self._owner()), encoding="utf-8")
            os.link(private, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(private)

    def _read(self) -> dict | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OutputBusy(f"{self.target}: cannot read its lock {self.path}: {exc}") from None
        try:
            owner = json.loads(text)
        except ValueError:
            owner = None
        if not isinstance(owner, dict):
            return {"pid": 0, "host": socket.gethostname(), "run": None}  # not a lock we wrote: stale
        return owner

    @staticmethod
    def _stale(owner: dict) -> bool:
        if owner.get("host") != socket.gethostname():
            return False
        try:
            return not pid_alive(int(owner.get("pid", 0)))
        except (TypeError, ValueError):
            return True

    def _break(self, owner: dict) -> bool:
        """Move a stale lock aside (rename is atomic: of two runs breaking it, one wins); a lock that changed in
        the meantime (another run took over first) is put back."""
        aside = self.path.with_name(f"{self.path.name}.stale-{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = None
        if isinstance(moved, dict) and moved.get("run") != owner.get("run"):
            with contextlib.suppress(OSError):
                os.link(aside, self.path)  # a fresh lock of another run: give it back
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True

    def _busy_message(self, owner: dict) -> str:
        host = owner.get("host")
        where = f"process {owner.get('pid')}" + ("" if host == socket.gethostname() else f" on {host}")
        return (
            f"{self.target} is being written by another run ({where}): wait for it to end, or write to another "
            f"file. If no run is writing it, delete {self.path}"
        )

    def release(self) -> None:
        """Give the lock back (only our own: a lock another run took over after ours was broken stays)."""
        if not self.held:
            return
        self.held = False
        owner = self._read_quiet()
        if owner is not None and owner.get("run") == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _read_quiet(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return owner if isinstance(owner, dict) else None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
