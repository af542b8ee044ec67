"""One output contract over two stores (issue 26): the plugin's GDAL store and describe's fiona store give every
primitive of ``core.output_contract.OutputStore`` (read from their source, so this runs without GDAL's Python
bindings), and the decisions over them (what a refused resume leaves, what a failed creation leaves, which rows a
batch replaces) are the contract's, checked here over a store that keeps its rows in a dict."""

from __future__ import annotations

import ast
import json
import os
import sqlite3
from pathlib import Path

import pytest
from ccexpert_changes.core.fields import FIELD_NAMES, LAYER_NAME, make_record
from ccexpert_changes.core.output_contract import (
    PARTIAL_SUFFIX,
    OutputContract,
    OutputRefused,
    OutputStore,
    StoredLayer,
)
from ccexpert_changes.core.run_loop import OutputWriter

ROOT = Path(__file__).resolve().parents[2]
STORES = {
    "qgis_plugin/ccexpert_changes/output.py": "GdalStore",
    "backend/ccexpert/gpkg_output.py": "FionaStore",
}
GRID = "ab12cd34"
META = {"grid_hash": GRID, "bands": "1,2,3"}


def _members(protocol: type) -> set[str]:
    """A protocol's methods and attributes, its bases' included."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (object,) or not getattr(klass, "_is_protocol", False):
            continue
        names |= {name for name in vars(klass) if not name.startswith("_")}
        names |= set(vars(klass).get("__annotations__", {}))
    return names


def _class(path: str, name: str) -> ast.ClassDef:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)


@pytest.mark.parametrize("path", sorted(STORES))
def test_each_store_gives_every_primitive_of_the_protocol_with_its_parameters(path):
    store = _class(path, STORES[path])
    methods = {node.name: node for node in store.body if isinstance(node, ast.FunctionDef)}
    wanted = _members(OutputStore)
    assert wanted == {"create", "open_existing", "append_rows", "close"}
    assert wanted <= set(methods), f"{STORES[path]} lacks {sorted(wanted - set(methods))}"
    for name in wanted:
        expected = list(
            OutputStore.__dict__[name].__code__.co_varnames[: OutputStore.__dict__[name].__code__.co_argcount]
        )
        assert [arg.arg for arg in methods[name].args.args] == expected, f"{STORES[path]}.{name}"


@pytest.mark.parametrize("path", sorted(STORES))
def test_each_writer_is_the_one_contract(path):
    writer = _class(path, "TileWriter")
    assert [ast.unparse(base) for base in writer.bases] == ["OutputContract"]
    own = {node.name for node in writer.body if isinstance(node, ast.FunctionDef)}
    assert own == {"__init__"}, "a writer adds no behaviour of its own: the contract decides"


class DictStore:
    """The primitives over a dict, with a file on disk so staging has something to rename."""

    def __init__(self, rows=(), metadata: str | None = json.dumps(META), fail_create: bool = False):
        self.rows = {tile_id: status for tile_id, status in rows}
        self.metadata = metadata
        self.fail_create = fail_create
        self.calls: list[str] = []

    def create(self, path, crs_wkt, metadata):
        self.calls.append("create")
        Path(path).write_bytes(b"started")
        if self.fail_create:
            raise OSError(28, "No space left on device")

    def open_existing(self, path):
        self.calls.append("open_existing")
        return StoredLayer([LAYER_NAME], list(FIELD_NAMES), list(self.rows.items()), self.metadata)

    def append_rows(self, rows, replace):
        self.calls.append(f"append_rows {sorted(replace)}")
        for tile_id in replace:
            del self.rows[tile_id]
        for record, _ in rows:
            assert record["tile_id"] not in self.rows, "a tile written twice"
            self.rows[record["tile_id"]] = record["status"]

    def close(self):
        self.calls.append("close")


def _tile(col: int, status: str = "ok", grid: str = GRID) -> tuple[dict, tuple]:
    tile_id = f"r00000_c{col:05d}_{grid}"
    if status == "ok":
        record = make_record(tile_id=tile_id, row=0, col=col, status="ok", caption="a road", confidence=0.5, changed=1)
    else:
        record = make_record(tile_id=tile_id, row=0, col=col, status=status, error="no")
    return record, (0.0, 0.0, 1.0, 1.0)


def _existing(tmp_path) -> Path:
    out = tmp_path / "o.gpkg"
    with sqlite3.connect(out) as db:  # a sound SQLite file: damage() finds nothing
        db.execute("CREATE TABLE t (a)")
    return out


def test_the_contract_is_what_the_run_loop_writes_into(tmp_path):
    writer = OutputContract(DictStore(), tmp_path / "o.gpkg", "", GRID, META)
    wanted = _members(OutputWriter)
    assert {"done", "replaces", "write", "finish", "discard"} <= wanted
    assert all(hasattr(writer, name) for name in wanted)


def test_a_resume_replaces_a_rows_tile_in_the_batch_that_writes_it_and_keeps_the_others(tmp_path):
    ids = [_tile(c)[0]["tile_id"] for c in range(3)]
    store = DictStore([(ids[0], "ok"), (ids[1], "error"), (ids[2], "skipped_nodata")])
    writer = OutputContract(store, _existing(tmp_path), "", GRID, META, resume=True)
    assert writer.done == {ids[0]} and writer.redone == 2 and not writer.staged and not writer.replaces
    writer.write([_tile(1)])
    assert store.calls[-1] == f"append_rows {[ids[1]]}"  # only the tile of this batch, in the same call
    assert store.rows == {ids[0]: "ok", ids[1]: "ok", ids[2]: "skipped_nodata"}
    writer.write([_tile(2, "skipped_nodata")])
    writer.write([_tile(3)])
    assert store.calls[-1] == "append_rows []"  # a new tile replaces nothing
    assert writer.finish(keep=True) and store.calls[-1] == "close"


@pytest.mark.parametrize(
    ("rows", "metadata", "kind"),
    [
        ([(f"r00000_c00000_{GRID}", "ok"), ("r00000_c00001_0badc0de", "ok")], json.dumps(META), "grid"),
        ([(f"r00000_c00000_{GRID}", "ok")], None, "unchecked"),
        ([(f"r00000_c00000_{GRID}", "ok")], json.dumps({**META, "bands": "3,2,1"}), "other_run"),
    ],
)
def test_a_refused_resume_closes_the_store_and_writes_nothing(tmp_path, rows, metadata, kind):
    store = DictStore(rows, metadata)
    with pytest.raises(OutputRefused) as refused:
        OutputContract(store, _existing(tmp_path), "", GRID, META, resume=True)
    assert refused.value.kind == kind
    assert store.calls == ["open_existing", "close"]
    assert store.rows == dict(rows)
    if kind == "grid":  # every hash it holds, and the first tile of another grid
        assert refused.value.items == ["0badc0de", GRID] and refused.value.detail == "r00000_c00001_0badc0de"


def test_force_lets_a_different_fingerprint_through_and_says_what(tmp_path):
    store = DictStore([(f"r00000_c00000_{GRID}", "ok")], json.dumps({**META, "bands": "3,2,1"}))
    writer = OutputContract(store, _existing(tmp_path), "", GRID, META, resume=True, force=True)
    assert writer.differences and "3,2,1" in writer.differences[0]


def test_a_failed_creation_leaves_no_partial_file_and_the_old_output_as_it_was(tmp_path):
    out = tmp_path / "o.gpkg"
    out.write_bytes(b"previous run")
    store = DictStore(fail_create=True)
    with pytest.raises(OSError, match="No space"):
        OutputContract(store, out, "", GRID, META)
    assert out.read_bytes() == b"previous run"
    assert [p.name for p in tmp_path.iterdir()] == ["o.gpkg"]
    assert store.calls == ["create", "close"]


def test_a_staged_run_replaces_the_output_with_its_first_captioned_batch_only(tmp_path):
    out = tmp_path / "o.gpkg"
    out.write_bytes(b"previous run")
    store = DictStore()
    writer = OutputContract(store, out, "", GRID, META)
    assert writer.staged and writer.replaces and writer.path.endswith(PARTIAL_SUFFIX)
    writer.write([_tile(0, "error")])
    assert writer.staged and out.read_bytes() == b"previous run"  # an error tile does not promote
    writer.write([_tile(1)])
    assert not writer.staged and out.read_bytes() == b"started" and writer.path == str(out)
    assert store.calls[-2:] == ["close", "open_existing"]  # closed for the rename, reopened in place
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]


def test_a_staged_run_that_is_not_kept_leaves_the_old_output(tmp_path):
    out = tmp_path / "o.gpkg"
    out.write_bytes(b"previous run")
    writer = OutputContract(DictStore(), out, "", GRID, META)
    writer.write([_tile(0, "error")])
    assert writer.finish(keep=False) is False
    assert out.read_bytes() == b"previous run" and os.listdir(tmp_path) == ["o.gpkg"]


def test_a_record_with_other_fields_is_refused_before_the_store_sees_it(tmp_path):
    store = DictStore()
    writer = OutputContract(store, tmp_path / "o.gpkg", "", GRID, META)
    record, bounds = _tile(0)
    with pytest.raises(ValueError, match="missing \\['caption'\\]"):
        writer.write([({k: v for k, v in record.items() if k != "caption"}, bounds)])
    assert not any(call.startswith("append_rows") for call in store.calls)
