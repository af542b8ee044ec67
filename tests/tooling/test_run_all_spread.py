"""bench/run_all.py quotes every timing as its median with the min-max over its rounds (issue 30): one best round
is not a figure (re-runs moved the HTTP ratios by 0.06 while the README gave three decimals)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("run_all", REPO / "bench" / "run_all.py")
run_all = importlib.util.module_from_spec(_spec)
sys.modules["run_all"] = run_all  # dataclasses look their module up
_spec.loader.exec_module(run_all)

HTTP_OUTPUT = """round 1: in-process 2.000, HTTP service 1.900, HTTP end to end 1.400 pairs/s
round 2: in-process 2.100, HTTP service 1.890, HTTP end to end 1.680 pairs/s
round 3: in-process 1.900, HTTP service 1.900, HTTP end to end 1.330 pairs/s
model echo on cpu (float32), ...
ratio HTTP service / in-process = 1.000 (overhead 0.0%; goal <= 15%)
{"ratio_service": 1.0, "ratio_e2e": 0.8, "median_ratio_service": 0.95, "median_ratio_e2e": 0.7, "rounds": 3}
"""


def test_spread_is_the_median_with_min_and_max():
    assert run_all.spread([0.72, 0.78, 0.71]) == "0.720 (0.710–0.780, 3 rounds)"
    assert run_all.spread([3.0, 1.0, 2.0, 10.0], "{:.1f}") == "2.5 (1.0–10.0, 4 rounds)"  # an even count: the mean
    assert run_all.spread([5.0]) == "5.000 (1 round)"
    with pytest.raises(ValueError):
        run_all.spread([])


def test_http_ratios_are_taken_round_by_round():
    """Each round's service and in-process figures are side by side; the best of each column is not a ratio
    of one round (the old README figure: best service over best in-process)."""
    ratios = [value for pair in run_all.http_rounds(HTTP_OUTPUT) for value in pair]
    assert ratios == pytest.approx([0.95, 0.7, 0.9, 0.8, 1.0, 0.7])
    rows = dict(run_all._http([HTTP_OUTPUT]))
    service = next(v for k, v in rows.items() if k.startswith("HTTP service"))
    e2e = next(v for k, v in rows.items() if k.startswith("HTTP end to end"))
    assert service == "0.950 (0.900–1.000, 3 rounds)" and e2e == "0.700 (0.700–0.800, 3 rounds)"
    with pytest.raises(ValueError, match="no 'round N:' lines"):
        run_all.http_rounds('{"ratio_service": 1.0}')


def test_repeated_runs_are_each_a_round(tmp_path):
    """A section with ``repeat`` runs its command that many times and its figures spread over all the runs."""
    counter = tmp_path / "n"
    script = (
        f"import json, pathlib; p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) + 1 if p.exists() else 1; "
        "p.write_text(str(n)); print(json.dumps({'new_tokens_per_pair': 20, 'batch_size': 8, "
        "'reference_pairs_per_s': 8.0 + n, 'batched_pairs_per_s': 10.0 + n, 'speedup': 1.0 + n / 10}))"
    )
    section = run_all.Section("generate", "t", [[sys.executable, "-c", script]], "why", run_all._generate, repeat=3)
    run_all.run(section, timeout=60)
    assert len(section.outputs) == 3 and counter.read_text() == "3"
    ((label, figure),) = section.rows
    assert "median (min–max) over runs" in label
    assert figure == (
        "10.000 (9.000–11.000, 3 rounds) vs 12.000 (11.000–13.000, 3 rounds) pairs/s; 1.20x (1.10x–1.30x, 3 rounds)"
    )
    header = {"date": "2026-12-07 16:00 UTC", "commit": "abc", "machine": "m", "versions": "v"}
    assert figure in run_all.readme_block([section], header)
    assert run_all.results_markdown([section], header).count("$ ") == 3  # every run's output is kept


def test_scaleout_rows_spread_over_runs():
    def output(rate, p50, overhead):
        result = {"pairs_per_s": rate, "p50_ms": p50, "p95_ms": p50 + 100, "pairs": 48, "errors": 0}
        summary = {"ray_overhead_ms_per_request": overhead, "note": "n", "setup": "s", "one_analyst_ray2_in_flight": 4}
        return "table\n" + json.dumps({"results": {"serve": result}, "summary": summary})

    rows = dict(run_all._scaleout([output(6.0, 1000, 30.0), output(7.0, 1200, 40.0), output(6.5, 1100, 35.0)]))
    serve = next(v for k, v in rows.items() if k.startswith("serve:"))
    assert serve == "6.50 (6.00–7.00, 3 rounds); 1100 (1000–1200, 3 rounds) / 1200 (1100–1300, 3 rounds)"
    assert rows["scale-out: ray overhead ms per request"] == "35.00 (30.00–40.00, 3 rounds)"
    assert rows["scale-out: one analyst ray2 in flight"] == "4"  # a count every run agrees on: once, no decimals


def test_every_timing_section_makes_several_rounds():
    """The sections the README quotes timings from: each has several rounds (runs or bench_http's own)."""
    by_key = {s.key: s for s in run_all.sections()}
    assert by_key["generate"].repeat >= 5 and by_key["plugin_read"].repeat >= 3 and by_key["scaleout"].repeat >= 3
    http = by_key["http"].commands[0]
    assert int(http[http.index("--rounds") + 1]) >= 7


def test_reliability_counts_stay_exact_and_timings_spread():
    def round_outputs(rate, mixed):
        return [
            json.dumps({"bad_inputs_answered_4xx": 48, "share_4xx": 1.0}),
            json.dumps({"pairs_per_s": rate, "mixed_up_ids": mixed, "p95_ms": 10 * rate}),
            json.dumps({"tiles_lost": 0, "mode": "kill"}),
        ]

    outputs = [text for rate, mixed in ((5.0, 0), (6.0, 0), (4.0, 1)) for text in round_outputs(rate, mixed)]
    rows = {k.split(": ", 1)[1]: v for k, v in run_all._reliability(outputs)}
    assert rows["bad inputs answered 4xx"] == "48" and rows["tiles lost"] == "0" and rows["mode"] == "kill"
    assert rows["pairs per s"] == "5.000 (4.000–6.000, 3 rounds)"
    assert rows["mixed up ids"] == "0 (0–1, 3 rounds)"  # a round that mixed ids up shows
    assert rows["share 4xx"] == "1.000"  # a float every round agrees on: once
    reliability = next(s for s in run_all.sections() if s.key == "reliability")
    assert len(reliability.commands) == run_all.RELIABILITY_COMMANDS and reliability.repeat >= 3


def test_reliability_rows_name_their_benchmark_list_seeds_and_drop_empty_text():
    """The README once showed two rows named ``server``, ``seed 181013.000 (151517.000–916155.000)`` and an empty
    ``server log tail``: each row now says which benchmark it is from, seeds are listed, empty text is left out."""
    outputs = []
    for seed, ok in ((181013, 4261), (151517, 4178), (916155, 4360)):
        outputs += [
            json.dumps({"server": "echo app", "seconds": 0.6}),
            json.dumps({"server": "echo 2 ms", "requests_ok": ok, "server_log_tail": ""}),
            json.dumps({"tiles_lost": 0, "seed": seed}),
        ]
    rows = dict(run_all._reliability(outputs))
    assert rows["bad inputs and fuzzing: server"] == "echo app" and rows["load, 20 clients: server"] == "echo 2 ms"
    assert rows["load, 20 clients: requests ok"] == "4261 (4178–4360, 3 rounds)"
    assert rows["faults (kills) then resume: seed"] == "181013, 151517, 916155"
    assert not any("log tail" in key for key in rows)


def test_plugin_read_rows_spread_over_runs():
    def output(ratio, big):
        block = {"throughput": {"ratio_read_encode": ratio}, "memory": {"20000": {"peak_rss_mib": big}, "2000": {}}}
        block["memory"]["2000"]["peak_rss_mib"] = 250.0
        return "log line\n" + json.dumps(block, indent=1) + "\n\nplugin read+encode vs raw: 99%"

    runs = [output(0.99, 251.3), output(0.95, 252.0), output(1.01, 251.0)]
    rows = [figure for _, figure in run_all._plugin_read(runs)]
    assert rows == ["99 % (95 %–101 %, 3 rounds)", "251.3 (251.0–252.0, 3 rounds) vs 250.0 (250.0–250.0, 3 rounds)"]
