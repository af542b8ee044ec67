"""Reliability figures of the service for the README: bad inputs and fuzzing against a live server, in one command.

- bad inputs: every case of the catalogue (``tests/backend/test_bad_inputs.py``: ``CASES``, JSON and multipart) sent
  to a real uvicorn server on 127.0.0.1 (the service app with the pixel-echo engine, API keys on); counted: tried,
  answered 4xx, answered with the expected status and error code;
- issue 24's findings met over HTTP (``tests/backend/test_service_reliability.py``: ``SCENARIOS``): a 2 MB
  ``[0, 0, ...]`` body (time and server memory), SIGTERM/SIGINT with requests in flight, an over-quota key before
  its body, an endless header line, a client disconnect, key guessing, a port in use; counted: answered as
  expected;
- fuzzing: schemathesis (``tests/backend/test_fuzz.py``: ``fuzz``) with ``--examples`` generated cases per operation
  and mode (valid and invalid for the OpenAPI schema, derandomized); counted: cases, 5xx, answers that do not
  conform to the schema.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_reliability.py [--examples 100] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "backend"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="fuzz cases per operation and mode")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-scenarios", action="store_true", help="skip issue 24's scenarios (about 40 s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)

    from service_helpers import LogRecords
    from test_bad_inputs import CASES, GOOD_HEADERS, catalogue_server, check, send
    from test_fuzz import fuzz
    from test_service_reliability import SCENARIOS

    t0 = time.monotonic()
    with catalogue_server() as url, LogRecords() as logs:
        answered_4xx, expected, wrong = 0, 0, []
        for case in CASES:
            response = send(url, case)
            answered_4xx += 400 <= response.status_code < 500
            problems = check(case, response)
            expected += not problems
            if problems:
                wrong.append(f"{case.id}: {'; '.join(problems)}")
        bad_seconds = time.monotonic() - t0
        t1 = time.monotonic()
        report = fuzz(url, GOOD_HEADERS, examples=args.examples)
        fuzz_seconds = time.monotonic() - t1
        tracebacks = logs.tracebacks()
    scenarios: dict[str, dict] = {}
    if not args.no_scenarios:
        import tempfile

        for scenario in SCENARIOS:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    seen = scenario.run(Path(tmp))
                    problems = scenario.check(seen)
                except Exception as exc:  # a scenario that cannot run is a failure, reported
                    seen, problems = {}, [f"{type(exc).__name__}: {exc}"]
            seen.pop("log_tail", None)
            scenarios[scenario.id] = {
                "expected": scenario.expected,
                "ok": not problems,
                "problems": problems,
                "seen": seen,
            }
    result = {
        "server": "service app + echo engine, uvicorn on 127.0.0.1, API keys on",
        "bad_inputs_tried": len(CASES),
        "bad_inputs_answered_4xx": answered_4xx,
        "bad_inputs_expected_code": expected,
        "bad_inputs_wrong": wrong,
        "bad_inputs_seconds": round(bad_seconds, 1),
        "fuzz_cases": report.cases,
        "fuzz_5xx": len(report.server_errors),
        "fuzz_nonconforming": len(report.nonconforming),
        "fuzz_statuses": {str(k): v for k, v in sorted(report.statuses.items())},
        "fuzz_examples_per_operation_and_mode": args.examples,
        "fuzz_seconds": round(fuzz_seconds, 1),
        "tracebacks_logged": len(tracebacks),
        "scenarios_tried": len(scenarios),
        "scenarios_as_expected": sum(v["ok"] for v in scenarios.values()),
        "scenarios": scenarios,
        "failures": (report.server_errors + report.nonconforming + tracebacks)[:5],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"server: {result['server']}")
        print(
            f"bad inputs: {result['bad_inputs_tried']} tried, {result['bad_inputs_answered_4xx']} answered 4xx, "
            f"{result['bad_inputs_expected_code']} with the expected status and code ({bad_seconds:.1f} s)"
        )
        for line in wrong:
            print("  " + line)
        print(
            f"fuzzing:    {result['fuzz_cases']} schemathesis cases ({args.examples} per operation and mode), "
            f"{result['fuzz_5xx']} answered 5xx, {result['fuzz_nonconforming']} not conforming to the schema "
            f"({fuzz_seconds:.1f} s); statuses {result['fuzz_statuses']}"
        )
        print(f"tracebacks logged by the server: {result['tracebacks_logged']}")
        if scenarios:
            print(f"issue 24 scenarios: {result['scenarios_as_expected']} of {len(scenarios)} answered as expected")
            for name, outcome in scenarios.items():
                mark = "ok  " if outcome["ok"] else "FAIL"
                print(f"  {mark} {name}: expected {outcome['expected']}; seen {outcome['seen']}")
                for problem in outcome["problems"]:
                    print(f"       {problem}")
        for line in result["failures"]:
            print("  " + line[:300])
    ok = not wrong and answered_4xx == len(CASES) and not report.server_errors and not report.nonconforming
    ok = ok and all(v["ok"] for v in scenarios.values())
    return 0 if ok and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())
