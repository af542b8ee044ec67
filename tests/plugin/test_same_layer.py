"""The plugin and ``ccexpert describe`` write the same layer for the same inputs through the one run driver (issue 26):
the same fields in the same order, the same rows in the same order, the same style, title, abstract and run
metadata. Only what names the run itself differs (run id, creation time)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

from conftest import BACKEND_BIN, read_layer
from plugin_rasters import pair

PER_RUN = {"run_id", "created_utc"}


def _schema(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return [(name, kind) for _, name, kind, *_ in db.execute('PRAGMA table_info("change_captions")')]


def _style_and_contents(path) -> tuple:
    with sqlite3.connect(path) as db:
        style = db.execute("SELECT styleName, styleQML, useAsDefault FROM layer_styles").fetchall()
        contents = db.execute(
            "SELECT identifier, description FROM gpkg_contents WHERE table_name = 'change_captions'"
        ).fetchone()
        metadata = db.execute("SELECT metadata FROM gpkg_metadata").fetchall()
    return style, contents, metadata


def _run_metadata(path) -> dict:
    from ccexpert_changes.core.fields import RUN_METADATA_TAG
    from osgeo import ogr

    ds = ogr.Open(str(path))
    return json.loads(ds.GetLayerByName("change_captions").GetMetadataItem(RUN_METADATA_TAG))


def test_plugin_and_describe_write_the_same_layer(run_describe, backend, tmp_path):
    before, after = pair(tmp_path, h=900, w=1000, pixel=0.5, changes=((60, 60, 300, 300),))
    before, after = before.resolve(), after.resolve()
    from_plugin, from_cli = tmp_path / "plugin.gpkg", tmp_path / "cli.gpkg"
    run_describe({"BEFORE": str(before), "AFTER": str(after), "OUTPUT": str(from_plugin)})
    key_file = tmp_path / "key.txt"
    key_file.write_text(backend.key + "\n")
    key_file.chmod(0o600)
    done = subprocess.run(
        [str(BACKEND_BIN / "ccexpert"), "describe", str(before), str(after), "-o", str(from_cli), "-q", "--areas"]
        + ["--backend", backend.url, "--api-key-file", str(key_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert _schema(from_plugin) == _schema(from_cli)
    plugin_rows, cli_rows = read_layer(from_plugin), read_layer(from_cli)
    assert len(plugin_rows) == 9

    def comparable(rows):
        return [{k: v for k, v in row.items() if k not in PER_RUN} for row in rows]

    assert comparable(plugin_rows) == comparable(cli_rows)  # fields, values, geometry and order
    assert _style_and_contents(from_plugin)[:2] == _style_and_contents(from_cli)[:2]
    assert _run_metadata(from_plugin) == _run_metadata(from_cli)
