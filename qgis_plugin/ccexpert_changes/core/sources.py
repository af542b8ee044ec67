"""What identifies a raster source, shared by the QGIS plugin and ``ccexpert describe``: the Before = After rule a
run refuses (:func:`same_imagery`: the same file under any name) and the identity a resume compares
(:func:`source_identity`: size and content hash, kept in the run metadata, ``core.fields.run_metadata``).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from typing import Any

IDENTITY_BYTES = 1 << 20  # the first and the last MiB of a raster file are hashed (headers, offsets, first/last tiles)


def source_identity(path: str) -> dict[str, Any]:
    """What identifies a raster file without reading it all: resolved path, size, mtime (UTC, informative) and
    the sha1 of its first and last MiB (``content``). A path that is not a local file (a GDAL virtual path, a
    database) gets ``{"path": ...}`` only, and is then not compared."""
    if not path or not os.path.isfile(path):
        return {"path": path}
    resolved = os.path.realpath(path)
    try:
        stat = os.stat(resolved)
        digest = hashlib.sha1(usedforsecurity=False)
        with open(resolved, "rb") as f:
            digest.update(f.read(IDENTITY_BYTES))
            if stat.st_size > IDENTITY_BYTES:
                f.seek(max(IDENTITY_BYTES, stat.st_size - IDENTITY_BYTES))
                digest.update(f.read(IDENTITY_BYTES))
    except OSError:
        return {"path": resolved}
    mtime = datetime.fromtimestamp(stat.st_mtime, timezone.utc).replace(microsecond=0).isoformat()
    return {
        "path": resolved,
        "size": stat.st_size,
        "mtime": mtime.replace("+00:00", "Z"),
        "content": digest.hexdigest(),
    }


def _file_part(source: str) -> str:
    """The file of a GDAL/QGIS data source: "/x.tif|layername=a" -> "/x.tif" (options after "|" dropped)."""
    return str(source or "").split("|", 1)[0].strip()


def same_imagery(a: str, b: str) -> bool:
    """Whether two raster sources are the same file: the Before = After mistake a run must refuse.

    Compares the file parts of GDAL-style sources ("/path/x.tif|layername=..."). When both exist, the file system
    decides (``os.path.samefile``: a symlink or a hard link to the same file is the same file); otherwise the
    normalised absolute paths are compared (case-folded where the file system is, e.g. Windows)."""
    fa, fb = _file_part(a), _file_part(b)
    if not fa or not fb:
        return False
    if os.path.exists(fa) and os.path.exists(fb):
        try:
            return os.path.samefile(fa, fb)
        except OSError:
            pass
    return os.path.normcase(os.path.abspath(os.path.expanduser(fa))) == os.path.normcase(
        os.path.abspath(os.path.expanduser(fb))
    )
