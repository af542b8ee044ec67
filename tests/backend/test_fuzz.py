"""Schemathesis against the running service (issue 16): generated requests, valid and invalid for the OpenAPI schema,
to every operation of a real uvicorn server on 127.0.0.1 (the pixel-echo engine, API keys on). No answer may be a
5xx, and every answer must conform to the schema (documented status, content type and body).

``fuzz()`` is importable (``bench/bench_reliability.py`` reports its counts). Bounded: ``EXAMPLES`` generated cases
per operation and generation mode, derandomized (the same cases on every run), no example database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import hypothesis
import hypothesis.errors
import pytest
from hypothesis import HealthCheck, Phase
from test_bad_inputs import GOOD_HEADERS, catalogue_server

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = 100  # per operation and mode (operations without inputs stop after one): about 200 requests


@dataclass
class FuzzReport:
    cases: int = 0
    server_errors: list[str] = field(default_factory=list)
    nonconforming: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    operations: dict[str, int] = field(default_factory=dict)


def fuzz(url: str, headers: dict[str, str] | None = None, examples: int = EXAMPLES) -> FuzzReport:
    """Run ``examples`` generated cases per operation, positive and negative, against ``url``; collect failures
    instead of stopping at the first."""
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    report = FuzzReport()
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection]
    operations = [result.ok() for result in schema.get_all_operations()]
    current = {"mode": ""}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            current["mode"] = mode.value

            @hypothesis.settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
            @hypothesis.given(operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                response = case.call(base_url=url, headers=dict(headers or {}), timeout=30)
                report.cases += 1
                report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
                media = (case.media_type or "-").split(";")[0]
                label = f"{case.method} {case.path} {media}"
                report.operations[label] = report.operations.get(label, 0) + 1
                where = f"{case.method} {case.path} {media} ({current['mode']}) -> {response.status_code}"
                if response.status_code >= 500:
                    report.server_errors.append(f"{where}: {response.text[:300]}")
                try:
                    case.validate_response(response, checks=checks, headers=dict(headers or {}))
                except Exception as exc:  # schemathesis' FailureGroup (an AssertionError) names every failed check
                    report.nonconforming.append(f"{where}: {str(exc)[:600]}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                continue
    return report


def test_fuzzed_requests_get_no_5xx_and_conform_to_the_schema():
    with catalogue_server() as url:
        report = fuzz(url, GOOD_HEADERS)
    assert report.cases >= 100, report
    assert not report.server_errors, report.server_errors[:5]
    assert not report.nonconforming, "\n".join(report.nonconforming[:5])
