"""The fault matrix every registered source must survive, against the simulator over loopback.

Parametrized over `etl.sources.SOURCES` (ids are the registry keys): a new provider
is picked up automatically once its simulator listing endpoint is named below.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from etl.errors import AuthError, MalformedResponse, SourceError
from etl.http import build_session
from etl.settings import Settings, load_settings
from etl.simulator import ENDPOINTS, Fault, Simulator
from etl.sources import SOURCES, SourceSpec

LISTING_ENDPOINT = {"sinch": "sinch.numbers", "pingram": "pingram.list"}
FAST = {"backoff_factor": 0.01, "backoff_jitter": 0.0}


@pytest.fixture(params=list(SOURCES), ids=list(SOURCES))
def spec(request: pytest.FixtureRequest) -> SourceSpec:
    """One registered source."""
    return SOURCES[request.param]


def endpoint_of(spec: SourceSpec) -> str:
    """The simulator endpoint that serves this source's listing."""
    endpoint = LISTING_ENDPOINT.get(spec.name)
    assert endpoint in ENDPOINTS, f"name the simulator listing endpoint of {spec.name!r}"
    return endpoint


def settings_for(simulator: Simulator, **env: str) -> Settings:
    """Settings pointing every source at the simulator."""
    return load_settings(**{**simulator.env(), **env})


def fetch_all(spec: SourceSpec, settings: Settings) -> list[Any]:
    """Every record of every account of the source, as the pipeline reads them."""
    extractor = spec.extractor(settings, build_session(settings, **FAST))
    records: list[Any] = []
    for account in extractor.accounts():
        with extractor.open_listing(account) as body:
            records.extend(spec.parse_listing(body, account_id=account).records)
    return records


def test_lists_everything(simulator: Simulator, spec: SourceSpec) -> None:
    """The whole listing (40 records) comes back in one request."""
    assert len(fetch_all(spec, settings_for(simulator))) == 40
    assert simulator.count(endpoint_of(spec)) == 1


def test_survives_a_5xx_burst(simulator: Simulator, spec: SourceSpec) -> None:
    """503, 502, 500 then success: all records, four requests."""
    endpoint = endpoint_of(spec)
    simulator.faults.add(endpoint, Fault(status=503), Fault(status=502), Fault(status=500))
    assert len(fetch_all(spec, settings_for(simulator))) == 40
    assert simulator.count(endpoint) == 4


def test_honours_429_retry_after(simulator: Simulator, spec: SourceSpec) -> None:
    """429 with Retry-After: 1 waits at least a second, then lists everything."""
    endpoint = endpoint_of(spec)
    simulator.faults.add(endpoint, Fault(status=429, retry_after="1"))
    started = time.monotonic()
    assert len(fetch_all(spec, settings_for(simulator))) == 40
    assert time.monotonic() - started >= 1.0
    assert simulator.count(endpoint) == 2


def test_truncated_body_is_malformed_naming_the_source(
    simulator: Simulator, spec: SourceSpec
) -> None:
    """A body cut mid-way raises MalformedResponse naming the source, and yields no list."""
    simulator.faults.add(endpoint_of(spec), Fault(truncate=True))
    with pytest.raises(MalformedResponse) as caught:
        fetch_all(spec, settings_for(simulator))
    assert caught.value.source == spec.name
    assert str(caught.value).startswith(f"{spec.name}/")


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(malformed=True), id="malformed"),
        pytest.param(Fault(wrong_shape=True), id="wrong-shape"),
    ],
)
def test_invalid_body_is_malformed(simulator: Simulator, spec: SourceSpec, fault: Fault) -> None:
    """Non-JSON or wrongly shaped bodies raise MalformedResponse naming the source."""
    simulator.faults.add(endpoint_of(spec), fault)
    with pytest.raises(MalformedResponse) as caught:
        fetch_all(spec, settings_for(simulator))
    assert caught.value.source == spec.name


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusals_are_not_retried(simulator: Simulator, spec: SourceSpec, status: int) -> None:
    """401 and 403 are one request and an AuthError."""
    endpoint = endpoint_of(spec)
    simulator.faults.add(endpoint, Fault(status=status), Fault(status=status))
    with pytest.raises(AuthError) as caught:
        fetch_all(spec, settings_for(simulator))
    assert simulator.count(endpoint) == 1
    assert (caught.value.source, caught.value.status) == (spec.name, status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_error_text_has_no_secret(simulator: Simulator, spec: SourceSpec, status: int) -> None:
    """A forced error's text and repr contain none of the configured secrets."""
    simulator.faults.add(endpoint_of(spec), Fault(status=status), Fault(status=status))
    settings = settings_for(simulator, NUMBERS_ETL_HTTP_MAX_ATTEMPTS="2")
    with pytest.raises(SourceError) as caught:
        fetch_all(spec, settings)
    text = f"{caught.value} {caught.value!r} {caught.value.args}"
    assert [s for s in settings.secrets() if s in text] == []
    assert f"HTTP {status}" in str(caught.value)
