"""Runs every benchmark and evaluation the README quotes, writes docs/RESULTS.md (figures, every ratio the scripts
print, machine, commit, date) and regenerates the README's results block from it. No README figure is typed by hand.

    .venv/bin/python bench/run_all.py                     # everything (~10 min on 2 quiet CPU cores)
    .venv/bin/python bench/run_all.py --only generate,http --no-readme
    CCEXPERT_PUBLISHED_PREDICTIONS=CCExpert_7b_LEVIR-CC_infer_results.txt .venv/bin/python bench/run_all.py

Each section is a committed command run as a subprocess; its whole output goes into RESULTS.md, and the figures the
README shows are read from its JSON. Every timing is quoted as its median with the min-max over its rounds
(``spread``): the rounds a benchmark makes itself (bench_http.py), or whole runs of the command (``Section.repeat``).
One best round is not a figure: re-runs on a quiet machine moved HTTP ratios by 0.06 (issue 30); enough rounds are
made that a re-run's median lands inside the quoted range. A section that cannot run here (the published predictions
file absent, no QGIS) is recorded as not run, with the reason, and its README row says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
RESULTS = REPO / "docs" / "RESULTS.md"
README = REPO / "README.md"
START, END = "<!-- results:start (bench/run_all.py writes this block) -->", "<!-- results:end -->"


@dataclass
class Section:
    key: str
    title: str
    commands: list[list[str]]
    why: str
    summarise: Callable[[list[str]], list[tuple[str, str]]]  # outputs -> README rows (what, figure)
    env: dict = field(default_factory=dict)
    available: Callable[[], str | None] = lambda: None  # a reason it cannot run here, or None
    repeat: int = 1  # the commands run this many times; each run is one round of the section's timings
    outputs: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None


def spread(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """A timing over its rounds: ``median (min–max, n rounds)``; one value says it is one round."""
    if not values:
        raise ValueError("no rounds to summarise")
    low, mid, high = min(values), statistics.median(values), max(values)
    if len(values) == 1:
        return f"{fmt.format(mid)} (1 round)"
    return f"{fmt.format(mid)} ({fmt.format(low)}–{fmt.format(high)}, {len(values)} rounds)"


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def _json_block(text: str) -> dict:
    return json.loads(text[text.index("{") : text.rindex("}") + 1])


def _inspect(outputs):
    rows = []
    for text in outputs:
        d = _json_block(text)
        rows.append(
            (
                f"parameters, {d['preset']} preset (vision / DIM / projector / LLM / total)",
                f"{d['vision']:,} / {d['dim']:,} / {d['projector']:,} / {d['llm']:,} / {d['total']:,}",
            )
        )
    return rows


def _published(outputs):
    d = _last_json(outputs[0])
    o = d.get("overall", d)
    return [
        (
            "published CCExpert-7B LEVIR-CC predictions re-scored (BLEU-4 / METEOR / ROUGE-L / CIDEr-D / S*m; "
            "change accuracy)",
            f"{o['BLEU-4']:.2f} / {o['METEOR']:.2f} / {o['ROUGE-L']:.2f} / {o['CIDEr-D']:.2f} / {o['S*m']:.2f}; "
            f"{o['change_accuracy']:.2f} %",
        )
    ]


def _demo(outputs):
    d = _last_json(outputs[0])
    rows = []
    for s in d["splits"]:
        tag = "card's test seed" if s["seed"] == d["card_test_seed"] else "unseen seed"
        counting = f"{s['counting_accuracy']:.1f} %" if s["counting_accuracy"] is not None else "n/a"
        rows.append(
            (
                f'demo model, {tag} {s["seed"]} ({s["pairs"]} pairs): S*m vs always "no change"; change '
                "accuracy; counting accuracy",
                f"{s['model']['S*m']:.2f} vs {s['always_no_change']['S*m']:.2f} ({s['s_m_ratio']:.2f}x); "
                f"{s['model']['change_accuracy']:.1f} %; {counting}",
            )
        )
    u = d["unseen"]
    if u["seeds"]:
        rows.append(
            (
                f"demo model, unseen seeds {u['seeds']}: S*m mean ± sd; ratio to baseline min / mean; "
                "target >= 2x on each",
                f"{u['s_m_mean']:.2f} ± {u['s_m_stdev'] or 0:.2f}; {u['s_m_ratio_min']:.2f}x / "
                f"{u['s_m_ratio_mean']:.2f}x; {'met' if u['all_at_least_2x'] else 'not met'}",
            )
        )
    return rows


def _generate(outputs):
    runs = [_last_json(text) for text in outputs]
    d = runs[0]
    return [
        (
            f"tiny preset on CPU, {d['new_tokens_per_pair']} tokens per pair: one pair per generate call vs "
            f"batched ({d['batch_size']} per call); median (min–max) over runs",
            f"{spread([r['reference_pairs_per_s'] for r in runs])} vs "
            f"{spread([r['batched_pairs_per_s'] for r in runs])} pairs/s; "
            f"{spread([r['speedup'] for r in runs], '{:.2f}x')}",
        )
    ]


ROUND_LINE = re.compile(
    r"^round \d+: in-process ([\d.]+), HTTP service ([\d.]+), HTTP end to end ([\d.]+) pairs/s$", re.MULTILINE
)


def http_rounds(text: str) -> list[tuple[float, float]]:
    """(service / in-process, end to end / in-process) of each round bench_http.py printed: the two paths are
    measured side by side within a round, so the ratio is taken round by round."""
    rounds = [tuple(float(v) for v in m.groups()) for m in ROUND_LINE.finditer(text)]
    if not rounds:
        raise ValueError("bench_http.py printed no 'round N:' lines")
    return [(service / engine, e2e / engine) for engine, service, e2e in rounds]


def _http(outputs):
    rounds = [r for text in outputs for r in http_rounds(text)]
    return [
        (
            "HTTP service / in-process engine, same pairs (median (min–max) over rounds)",
            spread([service for service, _ in rounds]),
        ),
        (
            "HTTP end to end (client PNG encoding on the same cores) / in-process (median (min–max) over rounds)",
            spread([e2e for _, e2e in rounds]),
        ),
    ]


def _prepare(outputs):
    d = _last_json(outputs[0])
    r, one = d["pairs_per_s"], d["one_thread_pairs_per_s"]
    rows = [
        (
            f"decode + prepare, 384 px {d['source']} chips, {d['cores']} cores: before / after / raw floor "
            "(inflate + memcpy)",
            f"{r['before']:.0f} / {r['after']:.0f} / {r['raw_floor']:.0f} pairs/s (after = "
            f"{d['after_over_before']:.2f}x before, {100 * d['after_over_raw_floor']:.0f}% of the floor; 1 thread: "
            f"{one['before']:.0f} / {one['after']:.0f} / {one['raw_floor']:.0f})",
        )
    ]
    levels = list((d.get("png_levels") or {}).values())
    if len(levels) >= 2:  # the clients' encoder now, then what they wrote before (bench_prepare's order)
        now, before = levels[0], levels[1]
        rows.append(
            (
                "client PNG encode per 384 px chip: now (Up rows) / before (adaptive rows), both zlib level 1",
                f"{now['encode_ms_per_chip']:.1f} / {before['encode_ms_per_chip']:.1f} ms, "
                f"{now['bytes_per_chip']:,} / {before['bytes_per_chip']:,} bytes",
            )
        )
    return rows


def _overlap(outputs):
    d = _last_json(outputs[0])
    e = d["engine"]
    rows = [
        (
            f"engine over a stand-in model ({e['standin_pairs_per_s']:.0f} pairs/s on its own): without / with overlap",
            f"{e['without_overlap']:.0f} / {e['with_overlap']:.0f} pairs/s "
            f"({100 * e['share_of_standin_with_overlap']:.0f}% of the stand-in with overlap)",
        )
    ]
    if "service" in d:
        s = d["service"]
        rows.append(
            (
                f"service over the stand-in, {s['clients']} clients: without / with overlap",
                f"{s['without_overlap']:.0f} / {s['with_overlap']:.0f} pairs/s",
            )
        )
    return rows


def _plugin_read(outputs):
    runs = [_json_block(text) for text in outputs]
    mem = [r["memory"] for r in runs]
    return [
        (
            "QGIS plugin chip read + PNG encode / raw GDAL read + encode (median (min–max) over runs)",
            spread([100 * r["throughput"]["ratio_read_encode"] for r in runs], "{:.0f} %"),
        ),
        (
            "plugin peak memory, 20000² vs 2000² uint16 pair, MiB (median (min–max) over runs)",
            f"{spread([m['20000']['peak_rss_mib'] for m in mem], '{:.1f}')} vs "
            f"{spread([m['2000']['peak_rss_mib'] for m in mem], '{:.1f}')}",
        ),
    ]


RELIABILITY_COMMANDS = 3  # bench_reliability.py, bench_load.py, bench_faults.py, in that order in every round
RELIABILITY_NAMES = ("bad inputs and fuzzing", "load, 20 clients", "faults (kills) then resume")
IDENTIFIERS = {"seed"}  # which run it was, not a figure: listed, never averaged


def _figure(key: str, values: list, fmt: str = "{:.3f}") -> str | None:
    """One README figure from a key's values over the rounds: text as it is (None when empty), identifiers listed,
    a value every round agrees on once, other numbers as their spread (integer counts without decimals)."""
    first = values[0]
    if isinstance(first, str):
        return first.strip() or None
    if key in IDENTIFIERS:
        return ", ".join(str(v) for v in values)
    integers = all(isinstance(v, int) for v in values)
    if len(set(values)) == 1:
        return str(first) if integers else fmt.format(first)
    return spread([float(v) for v in values], "{:.0f}" if integers else fmt)


def _reliability(outputs):
    """Counts (bad inputs answered, ids mixed up, tiles lost) must hold in every round: one value when the rounds
    agree, else their spread; timings (floats: pairs/s, latencies, shares) are spread over the rounds. Each row
    names its benchmark: several print a ``server`` or a ``seconds``."""
    rows = []
    for command, name in zip(range(RELIABILITY_COMMANDS), RELIABILITY_NAMES, strict=True):
        runs = [_last_json(text) for text in outputs[command::RELIABILITY_COMMANDS]]
        for key, value in runs[0].items():
            if not isinstance(value, int | float | str) or isinstance(value, bool):
                continue
            figure = _figure(key, [r.get(key) for r in runs])
            if figure is not None:
                rows.append((f"{name}: {key.replace('_', ' ')}", figure))
    return rows


def _scaleout(outputs):
    runs = [_last_json(text) for text in outputs]
    first = runs[0]
    rows = [
        (
            f"{name}: pairs/s; p50 / p95 latency under load, ms (median (min–max) over runs)",
            f"{spread([r['results'][name]['pairs_per_s'] for r in runs], '{:.2f}')}; "
            f"{spread([r['results'][name]['p50_ms'] for r in runs], '{:.0f}')} / "
            f"{spread([r['results'][name]['p95_ms'] for r in runs], '{:.0f}')}",
        )
        for name in first["results"]
    ]
    for key, value in first["summary"].items():
        if key in ("note", "setup") or not isinstance(value, int | float | str) or isinstance(value, bool):
            continue
        figure = _figure(key, [r["summary"].get(key) for r in runs], "{:.2f}")
        if figure is not None:
            rows.append((f"scale-out: {key.replace('_', ' ')}", figure))
    return rows


def _facts(outputs):
    d = _last_json(outputs[0])
    rows = [
        ("LEVIR-CC change references with a known object and action (goal >= 98 %)", f"{d['change_coverage']:.2%}"),
        ("LEVIR-CC no-change references without facts (goal 100 %)", f"{d['no_change_without_facts']:.2%}"),
    ]
    rows += [
        (
            f"facts vs 200 hand labels: {name} precision / recall",
            f"{d[name + '_precision']:.3f} / {d[name + '_recall']:.3f}",
        )
        for name in ("object", "action", "count", "where")
    ]
    return rows


def _demo_facts(outputs):
    d = _last_json(outputs[0])
    return [
        (
            f"demo model, unseen seed {r['seed']}: object F1 / where / exact count / S*m ratio",
            f"{r['object_f1']:.3f} / {r['where_accuracy']:.3f} / {r['exact_count']:.3f} / {r['s_m_ratio']:.2f}x",
        )
        for r in d["seeds"]
    ]


def _levircc_captions() -> bool:
    name = Path("shared", "data", "levircc_captions", "levircc_train_val_captions.json")
    return (REPO.parent / name).is_file() or (Path("/work") / name).is_file()


def _published_file() -> str | None:
    path = os.environ.get("CCEXPERT_PUBLISHED_PREDICTIONS")
    return (
        None
        if path and Path(path).is_file()
        else (
            "the published predictions file is not in this project (set CCEXPERT_PUBLISHED_PREDICTIONS to "
            "Meize0729/storage CCExpert/CCExpert_7b_LEVIR-CC_infer_results.txt)"
        )
    )


def _qgis_python() -> str | None:
    probe = subprocess.run(["/usr/bin/python3", "-c", "import qgis.core, osgeo"], capture_output=True)
    return None if probe.returncode == 0 else "QGIS' Python (/usr/bin/python3 with qgis, osgeo) is not installed"


def _script(name: str) -> Callable[[], str | None]:
    return lambda: None if (REPO / "bench" / name).is_file() else f"bench/{name} is not in this checkout"


def sections() -> list[Section]:
    single = {"OMP_NUM_THREADS": "1"}
    return [
        Section(
            "inspect",
            "Model size (parameters counted on the meta device)",
            [[PY, "-m", "ccexpert.cli", "inspect", "--preset", p] for p in ("0.5b", "7b")],
            "the DIM count must equal the reference's 63,765,505 used parameters",
            _inspect,
        ),
        Section(
            "published",
            "Evaluation protocol: the published CCExpert-7B LEVIR-CC predictions",
            [[PY, "-m", "ccexpert.cli", "eval", os.environ.get("CCEXPERT_PUBLISHED_PREDICTIONS", "-"), "--json"]],
            "our LEVIR-CC scorer against the reference's re-score (65.49 / 41.82 / 76.55 / 143.32 / 81.80)",
            _published,
            available=_published_file,
        ),
        Section(
            "demo",
            "Demo model on synthetic test splits (card seed and unseen seeds)",
            [[PY, "bench/eval_demo.py", "--json", "--write-card"]],
            'the learning proof: S*m >= 2x always answering "no change" on seeds never trained or selected on',
            _demo,
        ),
        Section(
            "facts",
            "Caption parser (change facts) on the LEVIR-CC references",
            [[PY, "bench/bench_facts.py", "--json"]],
            "the layer's fact fields are only as good as the parser; labels: tests/data/levircc_fact_labels.jsonl",
            _facts,
            available=lambda: None if _levircc_captions() else "../shared/data/levircc_captions is not here",
        ),
        Section(
            "demo_facts",
            "Demo model: facts parsed from its captions vs the generator's truth (seeds never trained on)",
            [[PY, "bench/bench_demo_facts.py", "--json"]],
            "issue 27 targets: object F1 >= 0.90, where >= 0.80, exact count >= 0.85, S*m >= 2.3x no-change",
            _demo_facts,
        ),
        Section(
            "generate",
            "Captioning throughput: one pair per generate call vs batched (tiny preset, CPU)",
            [[PY, "bench/bench_generate.py", "--preset", "tiny", "--json"]],
            "batching is what makes a backend fast; on CPU with the tiny model the gain is small",
            _generate,
            repeat=5,
        ),
        Section(
            "prepare",
            "Preparation in front of the device: decode + prepare, today's path vs the new one vs the raw floor",
            [[PY, "bench/bench_prepare.py", "--png-levels", "--json"]],
            "goal (issue 29): >= 400 pairs/s on 2 cores and >= 60 % of the raw floor (PNG inflate + memcpy)",
            _prepare,
            env=single,
        ),
        Section(
            "overlap",
            "Overlap: the engine and the service over a stand-in model that waits a fixed time per batch",
            [[PY, "bench/bench_overlap.py", "--json"]],
            "goals (issue 29): engine >= 90 % of the stand-in's own rate; service >= 300 pairs/s on 2 cores",
            _overlap,
            env=single,
        ),
        Section(
            "http",
            "HTTP service overhead vs the in-process engine (tiny model, CPU)",
            [[PY, "bench/bench_http.py", "--rounds", "7", "--json"]],
            "goal: service overhead <= 15 %",
            _http,
            env=single,
        ),
        Section(
            "plugin_read",
            "QGIS plugin: chip reading speed and memory",
            [["/usr/bin/python3", "bench/bench_plugin_read.py", "--rounds", "5"]],
            "goal: >= 70 % of a raw GDAL read; memory flat in the raster size",
            _plugin_read,
            env={"QT_QPA_PLATFORM": "offscreen"},
            available=_qgis_python,
            repeat=3,
        ),
        Section(
            "scaleout",
            "Scale-out: `ccexpert serve` vs Ray Serve with 1 and 2 replicas (tiny model, CPU)",
            [[PY, "bench/bench_scaleout.py", "--json"]],
            "Ray's overhead per request and the 2-replica speed-up (on 2 cores well under 2x: the replicas, the "
            "ingress, Serve's proxy and the clients share them)",
            _scaleout,
            env=single,
            repeat=3,
        ),
        Section(
            "reliability",
            "Reliability: bad inputs, fuzzing, load, faults",
            [
                [PY, "bench/bench_reliability.py", "--json"],
                [PY, "bench/bench_load.py", "--json"],
                [PY, "bench/bench_faults.py", "--json"],
            ],
            "every bad input answered 4xx, no 5xx under fuzzing, no mixed-up ids under load, no tile lost",
            _reliability,
            repeat=3,
            available=lambda: next(
                (r for r in (_script(n)() for n in ("bench_reliability.py", "bench_load.py", "bench_faults.py")) if r),
                None,
            ),
        ),
    ]


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.0f} GiB, no GPU"


def _versions() -> str:
    out = subprocess.run(
        [
            PY,
            "-c",
            "import torch, transformers, tokenizers; print('torch', torch.__version__, "
            "'| transformers', transformers.__version__, '| tokenizers', tokenizers.__version__)",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def run(section: Section, timeout: float) -> None:
    section.skipped = section.available()
    if section.skipped:
        return
    t0 = time.monotonic()
    for command in [c for _ in range(section.repeat) for c in section.commands]:
        env = {**os.environ, **section.env, "PYTHONUNBUFFERED": "1"}
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        section.outputs.append(done.stdout + (f"\n[stderr tail]\n{done.stderr[-1500:]}" if done.returncode else ""))
        if done.returncode != 0:
            raise RuntimeError(
                f"{section.key}: `{' '.join(command)}` exited {done.returncode}:\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )
    section.seconds = time.monotonic() - t0
    section.rows = section.summarise(section.outputs)


def results_markdown(done: list[Section], header: dict) -> str:
    lines = [
        "# Results",
        "",
        "Written by `bench/run_all.py`; do not edit by hand. Every figure below comes from the command shown "
        "above it, run once on the machine named here; the README's results block is generated from this "
        "run.",
        "",
        f"- date: {header['date']}",
        f"- commit: {header['commit']}",
        f"- machine: {header['machine']}",
        f"- software: {header['versions']}; Python {platform.python_version()}",
        "",
    ]
    for s in done:
        lines += [f"## {s.title}", "", f"Why: {s.why}.", ""]
        if s.skipped:
            lines += [f"**Not run here**: {s.skipped}.", ""]
            continue
        lines += [f"Ran in {s.seconds:.0f} s:", ""]
        for command, output in zip(s.commands * s.repeat, s.outputs, strict=True):
            shown = " ".join(Path(c).name if c == PY else c for c in command)
            lines += [f"```\n$ {shown}\n{output.strip()}\n```", ""]
        lines += ["| figure | value |", "|---|---|", *[f"| {what} | {value} |" for what, value in s.rows], ""]
    return "\n".join(lines)


def readme_block(done: list[Section], header: dict) -> str:
    rows = ["| figure | value |", "|---|---|"]
    for s in done:
        if s.skipped:
            rows.append(f"| {s.title} | not run on {header['date'][:10]}: {s.skipped} |")
        rows += [f"| {what} | {value} |" for what, value in s.rows]
    return "\n".join(
        [
            START,
            "",
            f"Measured by `.venv/bin/python bench/run_all.py` on {header['date'][:10]}, commit "
            f"{header['commit']}, {header['machine']}; the commands and their whole output are in "
            "[docs/RESULTS.md](docs/RESULTS.md).",
            "",
            *rows,
            "",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated section keys (default: all)")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the README's results block")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    args = parser.parse_args(argv)
    chosen = sections()
    if args.only:
        keys = set(args.only.split(","))
        unknown = keys - {s.key for s in chosen}
        if unknown:
            parser.error(f"unknown sections {sorted(unknown)}; known: {[s.key for s in chosen]}")
        chosen = [s for s in chosen if s.key in keys]
    header = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "machine": _machine(),
        "versions": _versions(),
    }
    for section in chosen:
        print(f"== {section.key}: {section.title}", flush=True)
        run(section, args.timeout)
        for what, value in section.rows:
            print(f"   {what}: {value}", flush=True)
        if section.skipped:
            print(f"   not run: {section.skipped}", flush=True)
    RESULTS.write_text(results_markdown(chosen, header) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(REPO)}")
    if not args.no_readme and not args.only:
        text = README.read_text(encoding="utf-8")
        if START not in text or END not in text:
            raise SystemExit(f"README.md has no results markers ({START} ... {END})")
        head, rest = text.split(START, 1)
        README.write_text(head + readme_block(chosen, header) + rest.split(END, 1)[1], encoding="utf-8")
        print("rewrote the README's results block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
