"""Schemathesis against /api/openapi.json, in process (WSGI), as an admin and without login: no operation
answers an unhandled 5xx, and every answer conforms to the documented response schema.

Bounded for CI (a few examples per operation, the embedded SQLite app with a small world and no readings).
The spec's own 500 bodies of the train and forecast endpoints are allowed: with no readings, training
fails the spec's way (`{"error": "Training failed"}`), and so does a forecast without a model.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")  # requirements-dev.txt; skipped only outside the dev env

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import response_schema_conformance  # noqa: E402

from tests.conftest import make_settings  # noqa: E402
from tests.factories import build_world  # noqa: E402

SPEC_500_BODIES = {"Training failed", "Model missing or forecast failed"}  # the spec, section 1.4.1
MAX_EXAMPLES = 8


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    from app import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("fuzz"), TRAIN_WAIT_S="5", FORECAST_WAIT_S="5"))
    app.fuzz_world = build_world(app)
    yield app
    app.server.extensions["aggregator"].engine.dispose()


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: CI fails on a change, not on luck
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the failure's example is reported as found
    suppress_health_check=list(HealthCheck),
    database=None,
)


def problem_of(case, headers: dict) -> str | None:
    """Why the answer to `case` is wrong: an unhandled 5xx, or a body the document does not describe."""
    response = case.call(headers=headers)
    where = f"{case.method} {case.formatted_path} {case.query or ''}"
    if response.status_code >= 500:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (
            response.status_code == 500 and isinstance(body, dict) and body.get("error") in SPEC_500_BODIES
        ):
            return f"unhandled {response.status_code} on {where}: {response.text[:300]}"
    try:
        case.validate_response(response, checks=[response_schema_conformance])
    except AssertionError as exc:  # schemathesis' failures are AssertionErrors
        return f"schema failure on {where}: {str(exc)[:300]}"
    return None


@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_no_unhandled_5xx_and_every_response_matches_the_schema(fuzz_app, who):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app.server)
    headers = dict(fuzz_app.fuzz_world.headers[who])
    problems: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/auth/logout"):
            continue  # it would end the admin session the other cases use
        operations += 1
        strategy = st.one_of(
            operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        )

        @given(case=strategy)
        @FUZZ_SETTINGS
        def run(case):
            problem = problem_of(case, headers)
            if problem:
                problems.append(problem)

        run()
    assert operations > 50  # every documented operation was exercised
    assert problems == [], "\n".join(sorted(set(problems))[:30])
