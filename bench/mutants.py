"""Hand-written mutation testing (issue 20): plant realistic bugs one at a time, run the tests that should catch them.

Each mutant is (name, file, exact old snippet, new snippet, test node ids). The checkout is copied (without .venv and
.git) to a temporary folder; every mutant is applied there, its tests run with the copy first on PYTHONPATH (the
.venv's editable install points at the real checkout), and the file is restored before the next one. The real
checkout is never touched.

    .venv/bin/python bench/mutants.py                 # every mutant (a baseline run of all selected tests first)
    .venv/bin/python bench/mutants.py --only dim      # mutants whose name contains "dim" (repeatable)
    .venv/bin/python bench/mutants.py --list

A mutant is *killed* when its tests fail (or time out), *survived* when they pass. Exit status 1 when any mutant
survived; 2, before any test runs, when a mutant is stale (its snippet no longer occurs exactly once in its file, or
a test file it names is gone): a stale mutant tests nothing, so it is an error, never a skip. Survivors and what was
done about them: docs/DEVELOPING.md, "Mutation testing".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "backend/ccexpert/modeling_ccexpert.py"
CKPT = "backend/ccexpert/convert_ccexpert.py"
ENGINE = "backend/ccexpert/engine.py"
PROC = "backend/ccexpert/processing_ccexpert.py"
GRID = "qgis_plugin/ccexpert_changes/core/grid.py"
CONTRACT = "qgis_plugin/ccexpert_changes/core/output_contract.py"  # the resume logic of both writers (issue 26)
METRICS = "training/ccexpert_training/caption_metrics.py"
RUN_LOOP = "qgis_plugin/ccexpert_changes/core/run_loop.py"
RETRY = "qgis_plugin/ccexpert_changes/core/retry.py"
FIELDS = "qgis_plugin/ccexpert_changes/core/fields.py"
LAYER_META = "qgis_plugin/ccexpert_changes/core/layer_metadata.py"
AUTH = "backend/ccexpert/service/auth.py"
BATCHING = "backend/ccexpert/service/batching.py"
IMAGES = "backend/ccexpert/service/images.py"
GENERAL_VLM = "backend/ccexpert/general_vlm.py"
NOCHANGE = "qgis_plugin/ccexpert_changes/core/lexicon.py"  # the phrasings moved to core (one copy)
STAGE_SCHEMA = "training/ccexpert_training/stage/schema.py"

T_DIM = "tests/backend/test_dim.py"
T_MOD = "tests/backend/test_modeling.py"
T_CK = "tests/backend/test_checkpoints.py"
T_ENG = "tests/backend/test_engine.py"
DIM_TESTS = [
    f"{T_DIM}::test_dim_matches_a_literal_restatement_of_the_reference",
    f"{T_DIM}::test_sine_position_encoding_matches_the_formula",
    f"{T_DIM}::test_before_and_after_are_not_interchangeable",
]
ORDER_TESTS = [f"{T_MOD}::test_dim_before_output_is_image_0_and_after_output_is_image_1"]
DEFAULT_TESTS = [
    f"{T_CK}::test_converter_defaults_give_the_official_dim",
    f"{T_CK}::test_convert_without_a_head_count_uses_width_over_128",
]
CONVERT_TESTS = [f"{T_CK}::test_official_key_mapping_examples", f"{T_CK}::test_convert_round_trip"]
GRID_TESTS = ["tests/core/test_grid.py"]
RESUME_TESTS = ["tests/backend/test_gpkg_output.py", "tests/core/test_output_stores.py"]
METRIC_TESTS = [
    "tests/training/test_caption_metrics.py::test_normalisation_is_lower_and_drop_periods_only",
    "tests/training/test_caption_metrics.py::test_report_dedups_scores_subsets_and_accuracy",
    "tests/training/test_caption_metrics.py::test_no_change_truth_needs_one_no_change_reference",
]
# issue 30: behaviours no test pinned; each mutant runs the area's old tests and the new pins
RUN_LOOP_TESTS = ["tests/core/test_run_loop.py", "tests/core/test_run_loop_pins.py"]
IN_FLIGHT_FAILURE_TESTS = [
    "tests/backend/test_describe_exit_codes.py::"
    "test_failing_with_requests_in_flight_keeps_a_grid_order_prefix_and_the_same_exit_code",
]
RETRY_TESTS = ["tests/core/test_retry.py", "tests/core/test_retry_pins.py"]
FINGERPRINT_TESTS = [
    "tests/core/test_fields.py",
    "tests/core/test_fingerprint_pins.py",
    "tests/backend/test_resume_pins.py",
]
SERVICE_PINS = "tests/backend/test_service_pins.py"
AUTH_TESTS = ["tests/backend/test_auth.py", f"{SERVICE_PINS}::test_the_auth_scheme_is_case_insensitive"]
CACHE_TESTS = [
    "tests/backend/test_batching.py",
    f"{SERVICE_PINS}::test_a_failed_pair_is_not_cached_under_its_idempotency_key",
]
ROTATION_TESTS = [
    "tests/backend/test_batching.py",
    f"{SERVICE_PINS}::test_round_robin_rotates_so_a_fifth_client_is_served_in_the_second_batch",
]
PNG_TESTS = [
    "tests/backend/test_service.py::test_bombs_and_16_bit_pngs_are_400_without_traceback",
    f"{SERVICE_PINS}::test_the_png_size_check_covers_both_dimensions",
]
TITLE_TESTS = ["tests/core/test_layer_metadata.py", "tests/core/test_layer_metadata_pins.py"]
PROMPT_TESTS = ["tests/backend/test_general_vlm_pins.py"]
NOCHANGE_TESTS = ["tests/backend/test_nochange.py"]
STAGE_TESTS = ["tests/training/test_stage_config.py", "tests/training/test_stage_config_pins.py"]


# the converter's two DIM cross-attention rules, as ruff format lays them out (one snippet: the mutant swaps targets)
CROSS_ATTENTIONS = (
    r'cross_attn_change_to_imageABC\." + _ATTN,' + "\n"
    r'        r"model.dim.layers.\1.change_cross_attn.\2.\3",' + "\n"
    "    ),\n"
    "    (\n"
    r'        r"model\.vision_resampler\.layers\.(\d+)\.cross_attn_imageAB_to_change\." + _ATTN,' + "\n"
    r'        r"model.dim.layers.\1.image_cross_attn.\2.\3",'
)


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


def M(name, file, old, new, tests) -> Mutant:  # a table constructor
    return Mutant(name, file, old, new, tuple(tests))


MUTANTS: list[Mutant] = [
    # -- the model: DIM order, gate, residual, scale fusion ------------------------------------------------------
    M(
        "model: before/after swapped before the projector",
        MODEL,
        "torch.stack((features_a, features_b), dim=1)",
        "torch.stack((features_b, features_a), dim=1)",
        ORDER_TESTS,
    ),
    M(
        "model: DIM fed (after, before)",
        MODEL,
        "self.dim(scales[:, :, 0], scales[:, :, 1])",
        "self.dim(scales[:, :, 1], scales[:, :, 0])",
        ORDER_TESTS,
    ),
    M(
        "dim: gate ignored (equal weights)",
        MODEL,
        "weights = self.scale_gate(pooled)[..., None]",
        "weights = torch.ones_like(self.scale_gate(pooled))[..., None]",
        DIM_TESTS,
    ),
    M(
        "dim: residual on the shallowest scale",
        MODEL,
        "return fused_a + scales_a[-1], fused_b + scales_b[-1], fused_change",
        "return fused_a + scales_a[0], fused_b + scales_b[0], fused_change",
        DIM_TESTS,
    ),
    M(
        "dim: gate pools by max instead of mean",
        MODEL,
        "pooled = torch.cat((image_a, image_b, queries), dim=-1).mean(dim=2)",
        "pooled = torch.cat((image_a, image_b, queries), dim=-1).amax(dim=2)",
        DIM_TESTS,
    ),
    M(
        "dim: image residual without position/flag",
        MODEL,
        "refined = image_queries + self.image_cross_attn(",
        "refined = torch.cat((image_a, image_b), dim=0) + self.image_cross_attn(",
        DIM_TESTS,
    ),
    M("dim: CFE difference B - A", MODEL, "gated_a - gated_b), dim=-1)", "gated_b - gated_a), dim=-1)", DIM_TESTS),
    M(
        "dim: fusion normalised by the mean weight",
        MODEL,
        "norm = weights.sum(dim=0) + 1e-6",
        "norm = weights.mean(dim=0) + 1e-6",
        DIM_TESTS,
    ),
    M(
        "dim: position encoding without the -0.5 offset",
        MODEL,
        "steps = (steps - 0.5) / (grid + 1e-6)",
        "steps = steps / (grid + 1e-6)",
        DIM_TESTS,
    ),
    M(
        "model: attention mask not given to the LLM",
        MODEL,
        "self.language_model(attention_mask=attention_mask,",
        "self.language_model(attention_mask=None,",
        [f"{T_ENG}::test_batch_of_prompts_of_different_lengths_equals_one_by_one"],
    ),
    # -- engine / processor ------------------------------------------------------------------------------------------
    M(
        "engine: confidence from processed scores",
        ENGINE,
        "compute_transition_scores(out.sequences, out.logits,",
        "compute_transition_scores(out.sequences, out.scores,",
        [f"{T_ENG}::test_confidence_uses_raw_logits_when_min_new_tokens_suppresses_im_end"],
    ),
    M(
        "processor: generation batches padded right",
        PROC,
        'span = slice(length - len(ids), length) if side == "left" else slice(0, len(ids))',
        "span = slice(0, len(ids))",
        [f"{T_ENG}::test_batch_of_prompts_of_different_lengths_equals_one_by_one"],
    ),
    # -- converter: key map and defaults -----------------------------------------------------------------------------
    M(
        "convert: default heads width // 64",
        CKPT,
        'vision["hidden_size"] // 128',
        'vision["hidden_size"] // 64',
        DEFAULT_TESTS,
    ),
    M(
        "convert: default depth 1",
        CKPT,
        'args.get("per_expert_depth", 2)',
        'args.get("per_expert_depth", 1)',
        DEFAULT_TESTS,
    ),
    M(
        "convert: default MLP 2x",
        CKPT,
        'args.get("mlp_dim", 4 * vision',
        'args.get("mlp_dim", 2 * vision',
        DEFAULT_TESTS,
    ),
    M(
        "convert: select layers off by one",
        CKPT,
        "dim_layers = [i % states if i < 0 else i for i in select]",
        "dim_layers = [i % (states - 1) if i < 0 else i for i in select]",
        DEFAULT_TESTS + CONVERT_TESTS,
    ),
    M(
        "convert: the two DIM cross-attentions swapped",
        CKPT,
        CROSS_ATTENTIONS,
        CROSS_ATTENTIONS.replace("change_cross_attn", "@")
        .replace("image_cross_attn", "change_cross_attn")
        .replace("@", "image_cross_attn"),
        CONVERT_TESTS,
    ),
    M(
        "convert: drops SigLIP layer 26 instead of 27",
        CKPT,
        "int(layer.group(1)) == last_vision_layer:",
        "int(layer.group(1)) == last_vision_layer - 1:",
        CONVERT_TESTS,
    ),
    # -- grid: stride, tile ids, hash --------------------------------------------------------------------------------
    M(
        "grid: stride ignores the overlap",
        GRID,
        "self.stride = self.chip_size - self.overlap",
        "self.stride = self.chip_size",
        GRID_TESTS,
    ),
    M(
        "grid: tile id row/col swapped",
        GRID,
        'return f"r{row:05d}_c{col:05d}_{self.grid_hash}"',
        'return f"r{col:05d}_c{row:05d}_{self.grid_hash}"',
        GRID_TESTS,
    ),
    M("grid: hash of the overlap instead of the stride", GRID, "str(self.stride),", "str(self.overlap),", GRID_TESTS),
    M(
        "grid: hash with 6 significant digits",
        GRID,
        'format(float(value), ".12g")',
        'format(float(value), ".6g")',
        GRID_TESTS,
    ),
    M(
        "grid: AOI span rounds the last chip down",
        GRID,
        "last = min(n - 2, math.ceil(hi / self.stride) - 1)",
        "last = min(n - 2, math.floor(hi / self.stride))",
        GRID_TESTS,
    ),
    # -- resume (core.output_contract, both writers) ------------------------------------------------------------------
    M(
        "resume: error tiles counted as done",
        CONTRACT,
        "self.done = {tile_id for tile_id, status in rows if status == STATUS_OK}",
        "self.done = {tile_id for tile_id, status in rows}",
        RESUME_TESTS,
    ),
    M(
        "resume: rows not ok are never replaced",
        CONTRACT,
        "{tile_id for tile_id, status in rows if status != STATUS_OK} - self.done",
        "{tile_id for tile_id, status in rows if status == STATUS_OK} - self.done",
        RESUME_TESTS,
    ),
    M(
        "resume: accepts a file that has the grid among others",
        CONTRACT,
        "others = hashes - {grid_hash}",
        "others = set() if grid_hash in hashes else hashes",
        RESUME_TESTS,
    ),
    M(
        "resume: written error tiles counted as done",
        CONTRACT,
        'ok = {record["tile_id"] for record, _ in rows if record["status"] == STATUS_OK}',
        'ok = {record["tile_id"] for record, _ in rows}',
        RESUME_TESTS,
    ),
    # -- eval metrics ------------------------------------------------------------------------------------------------
    M(
        "metrics: S*m over 3",
        METRICS,
        'raw["ROUGE-L"] + raw["CIDEr-D"]) / 4',
        'raw["ROUGE-L"] + raw["CIDEr-D"]) / 3',
        METRIC_TESTS,
    ),
    M(
        "metrics: S*m with BLEU-1",
        METRICS,
        '(raw["BLEU-4"] + raw["METEOR"]',
        '(raw["BLEU-1"] + raw["METEOR"]',
        METRIC_TESTS,
    ),
    M(
        "metrics: change accuracy counts only no-change hits",
        METRICS,
        "correct = sum(t == p for t, p in",
        "correct = sum(t and p for t, p in",
        METRIC_TESTS,
    ),
    M(
        "metrics: no-change truth needs every reference",
        METRICS,
        "return any(is_no_change(ref) for ref in refs)",
        "return all(is_no_change(ref) for ref in refs)",
        METRIC_TESTS,
    ),
    # -- issue 30: run loop ------------------------------------------------------------------------------------------
    M(
        "run loop: slow request at half the timeout",
        RUN_LOOP,
        "seconds > limit / 3:",
        "seconds > limit / 2:",
        RUN_LOOP_TESTS,
    ),
    M(
        "run loop: a cancel drops the answered batches",
        RUN_LOOP,
        "                while self._queue and self._write_oldest():\n",
        "                while self._queue and not self.is_canceled() and self._write_oldest():\n",
        RUN_LOOP_TESTS,
    ),
    M(
        "run loop: time left paced by every tile done",
        RUN_LOOP,
        "return self.not_attempted * span / rows",
        "return self.not_attempted * span / self.done",
        RUN_LOOP_TESTS,
    ),
    M(
        "run loop: requests in flight after a fatal error dropped",
        RUN_LOOP,
        "                while self._queue and self._write_oldest():\n",
        "                while self._queue and not self._abort and self._write_oldest():\n",
        RUN_LOOP_TESTS,
    ),
    M(
        "run loop: a fatal error's tiles left unwritten",
        RUN_LOOP,
        'if exc.kind in ("refused_key", "canceled"):',
        'if exc.kind in ("refused_key", "canceled", "fatal"):',
        IN_FLIGHT_FAILURE_TESTS,
    ),
    # -- retry, resume fingerprint, output title -------------------------------------------------------------------
    M(
        "retry: jitter inside the cap",
        RETRY,
        "delay = min(max_backoff, backoff * 2 ** min(attempt - 1, 60)) * jitter",
        "delay = min(max_backoff, backoff * 2 ** min(attempt - 1, 60) * jitter)",
        RETRY_TESTS,
    ),
    M("fingerprint: nodata not compared", FIELDS, '    ("nodata", "nodata value"),\n', "", FINGERPRINT_TESTS),
    M("fingerprint: overlap not compared", FIELDS, '    ("overlap", "overlap"),\n', "", FINGERPRINT_TESTS),
    M(
        "output: the layer's own title counts as taken",
        LAYER_META,
        '"SELECT 1 FROM gpkg_contents WHERE identifier = ? AND table_name != ?", (title, layer_name)',
        '"SELECT 1 FROM gpkg_contents WHERE identifier = ?", (title,)',
        TITLE_TESTS,
    ),
    # -- service ---------------------------------------------------------------------------------------------------
    M(
        "service: auth scheme case-sensitive",
        AUTH,
        'if scheme.lower() != "bearer"',
        'if scheme != "Bearer"',
        AUTH_TESTS,
    ),
    M(
        "service: failed pairs cached under their key",
        BATCHING,
        "            if exc is None:\n                self._done[item.key] = item.future",
        "            if True:\n                self._done[item.key] = item.future",
        CACHE_TESTS,
    ),
    M(
        "service: round-robin does not rotate",
        BATCHING,
        "self._queues.move_to_end(client)  # served",
        "self._queues.get(client)  # served",
        ROTATION_TESTS,
    ),
    M(
        "service: PNG size check on the width only",
        IMAGES,
        "if header.size != (chip_size, chip_size):",
        "if header.width != chip_size:",
        PNG_TESTS,
    ),
    # -- general VLMs, no-change detection, stage config -----------------------------------------------------------
    M(
        "general VLM: the default prompt sent whatever the caller asked",
        GENERAL_VLM,
        "prepare = partial(self._inputs, prompt=text)",
        "prepare = partial(self._inputs, prompt=DEFAULT_PROMPT)",
        PROMPT_TESTS,
    ),
    M(
        "no-change: a phrasing anywhere in the caption",
        NOCHANGE,
        "return normalise_caption(text) in _NO_CHANGE_SET",
        "return any(phrase in normalise_caption(text) for phrase in _NO_CHANGE_SET)",
        NOCHANGE_TESTS,
    ),
    M(
        "no-change: periods kept",
        NOCHANGE,
        'text.lower().replace(".", " ").split()',
        "text.lower().split()",
        NOCHANGE_TESTS,
    ),
    M(
        'no-change: "nothing has changed" forgotten',
        NOCHANGE,
        '{"nothing has changed", "there is no change", "no change"}',
        '{"there is no change", "no change"}',
        NOCHANGE_TESTS,
    ),
    M(
        "stage config: booleans taken as integers",
        STAGE_SCHEMA,
        "if isinstance(value, bool) or not isinstance(value, int) or value < low:",
        "if not isinstance(value, int) or value < low:",
        STAGE_TESTS,
    ),
    # -- the context note (issue 27 item 7) ------------------------------------------------------------------------
    M(
        "context: idempotency key without the note",
        "backend/ccexpert/service/serving.py",
        "digest(b, a), tokens, note)",
        "digest(b, a), tokens)",
        ["tests/backend/test_context_note.py::test_a_cached_answer_for_another_note_is_never_reused"],
    ),
    M(
        "context: batches grouped by caption length only",
        "backend/ccexpert/service/batching.py",
        "return item.max_new_tokens, item.context",
        "return item.max_new_tokens, None",
        ["tests/backend/test_context_note.py::test_pairs_of_different_notes_never_share_an_engine_call"],
    ),
    M(
        "context: general VLM prompt without the note",
        "backend/ccexpert/general_vlm.py",
        "        text = compose_prompt(prompt, context)",
        "        text = check_prompt(prompt)",
        ["tests/backend/test_general_vlm_pins.py"],
    ),
    M(
        "context: note not stored in the run metadata",
        FIELDS,
        '        meta["context"] = context',
        "        pass",
        ["tests/backend/test_describe_context.py"],
    ),
    M(
        "plan: rasters left open when the AOI is refused",
        "backend/ccexpert/raster_io.py",
        "        pair.close()\n        raise",
        "        raise",
        [
            "tests/backend/test_describe_plan.py::"
            "test_a_check_that_fails_once_the_rasters_are_open_closes_them_and_writes_nothing"
        ],
    ),
    M(
        "plan: Before = After not refused",
        "backend/ccexpert/describe_plan.py",
        "    if same_imagery(options.before, options.after):",
        "    if False:",
        ["tests/backend/test_describe_plan.py::test_before_equal_to_after_is_refused_before_a_raster_is_opened"],
    ),
    M(
        "context: report without the note",
        "backend/ccexpert/report.py",
        "{context_html(meta)}",
        "",
        ["tests/backend/test_describe_context.py::test_the_report_shows_the_note_under_the_title"],
    ),
    M(
        "png: rows differenced upside down (a wrong but valid-looking stream)",
        "qgis_plugin/ccexpert_changes/core/png.py",
        "np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])",
        "np.subtract(flat[:-1], flat[1:], out=rows[1:, 1:])",
        ["tests/core/test_png.py"],
    ),
    M(
        "png: first row filtered against itself",
        "qgis_plugin/ccexpert_changes/core/png.py",
        "rows[0, 1:] = flat[0]",
        "rows[0, 1:] = 0",
        ["tests/core/test_png.py"],
    ),
    M(
        "grid: half a pixel read as on the grid (AFTER not resampled)",
        "qgis_plugin/ccexpert_changes/core/grid.py",
        "if abs(self.dx - round(self.dx)) <= 1e-3 and abs(self.dy - round(self.dy)) <= 1e-3:",
        "if abs(self.dx - round(self.dx)) <= 0.5 and abs(self.dy - round(self.dy)) <= 0.5:",
        ["tests/core/test_grid.py"],
    ),
]


def _checkout_files() -> list[str]:
    """The files git would commit here (tracked, and untracked ones not ignored): never a build folder, a chroot or a
    device node that happens to lie in the checkout (a copied /dev fills the disk)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


def copy_checkout(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in _checkout_files():
        source = ROOT / name
        if not source.is_file() or any(part in {".venv", ".venv-qgis"} for part in Path(name).parts):
            continue  # deleted in the work tree, or a link to the shared environments
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)


def environment(work: Path) -> dict:
    env = dict(os.environ)
    paths = [str(work / "backend"), str(work / "training"), str(work / "qgis_plugin")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports(work: Path, python: str, env: dict) -> None:
    code = "import ccexpert, ccexpert_training, ccexpert_changes as c; print(ccexpert.__file__, c.__file__)"
    out = subprocess.run([python, "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    if not all(Path(p).resolve().is_relative_to(work.resolve()) for p in out.split()):
        raise SystemExit(f"the copy's code is not what gets imported: {out.strip()}")


def stale(mutants: list[Mutant], root: Path = ROOT) -> list[str]:
    """Why each mutant cannot be planted as written (empty when all can): its snippet must occur exactly once in
    its file, differ from its replacement, and its test files must exist. A stale mutant tests nothing, so it is
    an error that stops the run before any test, never a silent skip."""
    problems = []
    for m in mutants:
        path = root / m.file
        count = path.read_text().count(m.old) if path.is_file() else 0
        if count != 1:
            problems.append(f"{m.name}: snippet found {count} times in {m.file} (update it with the code)")
        if m.old == m.new:
            problems.append(f"{m.name}: the replacement equals the snippet")
        missing = sorted({t.split("::")[0] for t in m.tests if not (root / t.split("::")[0]).exists()})
        if missing:
            problems.append(f"{m.name}: no test file {', '.join(missing)}")
    return problems


def run_tests(work: Path, python: str, env: dict, tests, timeout: float) -> tuple[str, float, str]:
    cmd = [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.monotonic() - start, ""
    seconds = time.monotonic() - start
    tail = (done.stdout + done.stderr).strip().splitlines()
    failure = next((line for line in tail if line.startswith("E ")), tail[-1] if tail else "")
    if done.returncode == 0:
        return "survived", seconds, tail[-1] if tail else ""
    if done.returncode == 1:
        return "killed", seconds, failure
    if done.returncode == 5:
        return "error (no tests collected)", seconds, failure
    return f"killed (pytest exit {done.returncode})", seconds, failure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run the mutants whose name contains this text (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant (default 300)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of all selected tests")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)

    mutants = [m for m in MUTANTS if not args.only or any(o.lower() in m.name.lower() for o in args.only)]
    if not mutants:
        print("no mutant matches", file=sys.stderr)
        return 2
    problems = stale(mutants)
    if args.list:
        for m in mutants:
            print(f"{m.name:55s} {m.file}  [{', '.join(t.rsplit('::', 1)[-1] for t in m.tests)}]")
        print(f"{len(mutants)} mutants")
    if problems:
        print(f"{len(problems)} stale mutant(s); nothing was run:", file=sys.stderr)
        for problem in problems:
            print(f"  error: {problem}", file=sys.stderr)
        return 2
    if args.list:
        return 0

    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
    work = Path(tempfile.mkdtemp(prefix="ccexpert-mutants-")) / "checkout"
    copy_checkout(work)
    env = environment(work)
    try:
        check_imports(work, python, env)
        if not args.no_baseline:
            selected = list(dict.fromkeys(t for m in mutants for t in m.tests))
            status, seconds, detail = run_tests(work, python, env, selected, args.timeout * 3)
            print(f"baseline ({len(selected)} selections, {seconds:.0f} s): {'ok' if status == 'survived' else status}")
            if status != "survived":
                print(f"  the unmutated tests do not pass: {detail}", file=sys.stderr)
                return 2
        results = []
        for number, mutant in enumerate(mutants, 1):
            path = work / mutant.file
            original = path.read_text()
            count = original.count(mutant.old)
            if count != 1:
                results.append((mutant, f"error (snippet found {count} times)", 0.0, ""))
            else:
                path.write_text(original.replace(mutant.old, mutant.new))
                try:
                    results.append((mutant, *run_tests(work, python, env, mutant.tests, args.timeout)))
                finally:
                    path.write_text(original)
            _, status, seconds, detail = results[-1]
            print(f"[{number:2d}/{len(mutants)}] {status:22s} {seconds:5.0f} s  {mutant.name}", flush=True)
            if status.startswith("killed") and detail:
                print(f"        {detail[:150]}")
    finally:
        if args.keep:
            print(f"copy kept at {work}")
        else:
            shutil.rmtree(work.parent, ignore_errors=True)

    killed = [r for r in results if r[1].startswith("killed")]
    survived = [r for r in results if r[1] == "survived"]
    errors = [r for r in results if r[1].startswith("error")]
    print(f"\nmutants: {len(results)}  killed: {len(killed)}  survived: {len(survived)}  errors: {len(errors)}")
    for mutant, status, _, _ in survived + errors:
        print(f"  {status}: {mutant.name} ({mutant.file})")
    return 1 if survived or errors else 0


if __name__ == "__main__":
    sys.exit(main())
