"""Schemathesis fuzzes every operation of the REST API's OpenAPI, as served at run time: whatever
it sends, the gateway answers, and never with a server error (5xx).

In process (ASGI), on a gateway wired to a fresh SQLite file, without its delivery worker.
A bounded number of examples per operation keeps the run short; with ``CI=true`` the
exploration is derandomized (see tests/conftest.py), so that a landing never depends on a draw.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from gateway.composition import build
from gateway.http.app import create_app
from gateway.settings import Settings

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = tmp_path_factory.mktemp("fuzz") / "saisine.db"
    # without credentials, so that the fuzzing reaches past the door into every operation
    # (the doors themselves are tests/test_auth.py's)
    settings = Settings(
        database_url=f"sqlite:///{db}", log_json=True, sender_auth="none", operator_auth=False
    )
    container = build(settings)
    yield create_app(container)
    container.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


def test_every_operation_is_fuzzed_without_a_server_error(api_schema: Any) -> None:
    """Each operation of the OpenAPI, fuzzed in turn, answers every request with a 2xx, 3xx or 4xx.

    One test walks the operations found at run time (schemathesis' own pytest fixture loader
    does not work with pytest 9), so that an operation added later is fuzzed too; every
    failing operation is reported, with schemathesis' reproduction of the request.
    """
    failures: dict[str, str] = {}
    labels = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)
        for mode in GenerationMode:  # valid requests, then requests that break the contract
            try:
                _fuzz(operation, mode)
            except Unsatisfiable:  # nothing in its contract to break (no parameter, any string)
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # all of them, not only the first
                # (schemathesis' FailureGroup is a BaseExceptionGroup: it lists the failures,
                # each with a curl line that reproduces it)
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]
    assert "POST /api/v1/gendarmerie/procedures" in labels, labels
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def _fuzz(operation: Any, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,  # the first call of an operation pays for warming caches
        derandomize=os.environ.get("CI") == "true",
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    fuzz()
