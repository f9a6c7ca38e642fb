"""Sinch signing (published vector) and the log-in/instance session against the simulator."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from etl.errors import AuthError, MalformedResponse
from etl.extract.sinch import SinchExtractor, parse_sinch_listing
from etl.extract.sinch_auth import (
    SinchInstanceAuth,
    content_md5,
    sign_sinch_request,
    sinch_timestamp,
)
from etl.http import build_session
from etl.settings import Settings, load_settings
from etl.simulator import SIM_SINCH_INSTANCE_ID, SIM_SINCH_INSTANCE_SECRET, Fault, Simulator

FAST = {"backoff_factor": 0.01, "backoff_jitter": 0.0}


def login_settings(simulator: Simulator, **env: Any) -> Settings:
    """Settings with the simulator's Sinch log-in pair (no organisation id)."""
    return load_settings(**{**simulator.login_env(), **{k: str(v) for k, v in env.items()}})


def count_sinch_records(extractor: SinchExtractor) -> int:
    """How many records every organisation's listing has, streamed and parsed."""
    total = 0
    for account in extractor.accounts():
        with extractor.open_listing(account) as body:
            total += sum(1 for _ in parse_sinch_listing(body, account_id=account).records)
    return total


def test_signer_reproduces_the_published_vector() -> None:
    """sign_sinch_request gives Sinch's published signature for its example request."""
    signature = sign_sinch_request(
        verb="POST",
        body=b'{"message":"Hello world"}',
        content_type="application/json",
        timestamp="2014-06-04T13:41:58Z",
        path="/v1/sms/+46700000000",
        secret="JViE5vDor0Sw3WllZka15Q==",
    )
    assert signature == "qDXMwzfaxCRS849c/2R0hg0nphgdHciTo7OdM6MsdnM="


def test_content_md5_of_the_published_body_and_of_no_body() -> None:
    """ContentMD5 is the published value for the example body and empty without a body."""
    assert (content_md5(b'{"message":"Hello world"}'), content_md5(None)) == (
        "jANzQ+rgAHyf1MWQFSwvYw==",
        "",
    )


def test_instance_auth_signs_a_get_with_json_content_type() -> None:
    """SinchInstanceAuth sets Content-Type, x-timestamp and Instance {id}:{signature} on a GET."""
    auth = SinchInstanceAuth("inst-1", "JViE5vDor0Sw3WllZka15Q==")
    prepared = requests.Request("GET", "https://portalapi.sinch.com/v1/x/numbers?q=1").prepare()
    signed = auth(prepared)
    timestamp = signed.headers["x-timestamp"]
    expected = sign_sinch_request(
        verb="GET",
        body=None,
        content_type="application/json",
        timestamp=timestamp,
        path="/v1/x/numbers",
        secret="JViE5vDor0Sw3WllZka15Q==",
    )
    assert signed.headers["Content-Type"] == "application/json"
    assert signed.headers["Authorization"] == f"Instance inst-1:{expected}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp)
    assert "JViE5vDor0Sw3WllZka15Q" not in repr(auth)


def test_timestamp_is_iso_8601_utc_with_millis() -> None:
    """sinch_timestamp renders UTC like 2015-06-20T11:43:10.944Z."""
    from datetime import UTC, datetime

    when = datetime(2015, 6, 20, 11, 43, 10, 944000, tzinfo=UTC)
    assert sinch_timestamp(when) == "2015-06-20T11:43:10.944Z"


@pytest.mark.parametrize("shape", ["object", "array", "string-id"])
def test_login_creates_instance_and_finds_the_organisation(
    simulator: Simulator, shape: Any
) -> None:
    """With SINCH_EMAIL/SINCH_PASSWORD: log in, create an instance, look up the organisation."""
    simulator.faults.organisations_shape = shape
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    assert extractor.accounts() == ["8888123"]
    assert count_sinch_records(extractor) == 40
    assert [(r.endpoint, r.status) for r in simulator.requests] == [
        ("sinch.login", 200),
        ("sinch.instance", 200),
        ("sinch.organisations", 200),
        ("sinch.numbers", 200),
    ]


def test_fixed_credentials_401_is_one_request_and_auth_error(simulator: Simulator) -> None:
    """With fixed instance credentials a 401 is not retried and says what to check."""
    simulator.faults.add("sinch.numbers", Fault(status=401), Fault(status=401))
    settings = load_settings(**simulator.env())
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    with pytest.raises(AuthError) as caught:
        count_sinch_records(extractor)
    assert simulator.count("sinch.numbers") == 1
    assert str(caught.value) == (
        "sinch/8888123: HTTP 401 from /v1/organisations/id/8888123/numbers: "
        "Sinch error 40100: Unauthorized "
        "(check the Authorization header and the credentials)"
    )
    assert caught.value.code == "40100"


def test_wrong_instance_secret_hints_at_the_secret(simulator: Simulator) -> None:
    """A secret that does not match gives errorCode 40102 and the SINCH_INSTANCE_SECRET hint."""
    settings = load_settings(**{**simulator.env(), "SINCH_INSTANCE_SECRET": "d3Jvbmcgc2VjcmV0"})
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    with pytest.raises(AuthError) as caught:
        count_sinch_records(extractor)
    assert str(caught.value) == (
        "sinch/8888123: HTTP 401 from /v1/organisations/id/8888123/numbers: "
        "Sinch error 40102: Invalid signature "
        "(check SINCH_INSTANCE_SECRET; the instance may have expired)"
    )
    assert simulator.count("sinch.numbers") == 1


def test_login_mode_401_renews_once_then_retries_once(simulator: Simulator) -> None:
    """In log-in mode a 401 creates one new instance and retries the call once."""
    simulator.faults.add("sinch.numbers", Fault(status=401))
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    assert count_sinch_records(extractor) == 40
    assert [(r.endpoint, r.status) for r in simulator.requests] == [
        ("sinch.login", 200),
        ("sinch.instance", 200),
        ("sinch.organisations", 200),
        ("sinch.numbers", 401),
        ("sinch.login", 200),
        ("sinch.instance", 200),
        ("sinch.numbers", 200),
    ]


def test_login_mode_second_401_is_auth_error_without_loop(simulator: Simulator) -> None:
    """In log-in mode a 401 after the renewal is an AuthError: one renewal, no loop."""
    simulator.faults.add("sinch.numbers", *[Fault(status=401)] * 3)
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    with pytest.raises(AuthError):
        count_sinch_records(extractor)
    assert (simulator.count("sinch.numbers"), simulator.count("sinch.instance")) == (2, 2)


def test_short_instance_ttl_is_renewed_before_expiry(simulator: Simulator) -> None:
    """An instance living 2 s is replaced before it expires, so no call is refused."""
    simulator.faults.instance_ttl = 2
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    accounts = extractor.accounts()
    time.sleep(1.9)  # past 90 % of the lifetime, before the expiry
    assert accounts == ["8888123"]
    assert count_sinch_records(extractor) == 40
    assert [(r.endpoint, r.status) for r in simulator.requests] == [
        ("sinch.login", 200),
        ("sinch.instance", 200),
        ("sinch.organisations", 200),
        ("sinch.login", 200),
        ("sinch.instance", 200),
        ("sinch.numbers", 200),
    ]


def test_wrong_password_is_auth_error_after_one_login(simulator: Simulator) -> None:
    """A refused log-in is an AuthError naming SINCH_EMAIL/SINCH_PASSWORD, not retried."""
    settings = login_settings(simulator, SINCH_PASSWORD="not-the-password")
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    with pytest.raises(AuthError) as caught:
        extractor.accounts()
    assert str(caught.value) == (
        "sinch: Sinch refused the log-in for operator@example.com (HTTP 401): "
        "check SINCH_EMAIL and SINCH_PASSWORD"
    )
    assert simulator.count("sinch.login") == 1


def test_login_503_is_retried(simulator: Simulator) -> None:
    """The log-in and instance POSTs are retried on 503 like GETs."""
    simulator.faults.add("sinch.login", Fault(status=503))
    simulator.faults.add("sinch.instance", Fault(status=503))
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    assert extractor.accounts() == ["8888123"]
    assert (simulator.count("sinch.login"), simulator.count("sinch.instance")) == (2, 2)


def test_instance_answer_of_wrong_shape_is_malformed(simulator: Simulator) -> None:
    """An instance answer without id/secret is a MalformedResponse."""
    simulator.faults.add("sinch.instance", Fault(wrong_shape=True))
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    with pytest.raises(MalformedResponse) as caught:
        extractor.accounts()
    assert str(caught.value) == 'sinch: the Sinch instance answer lacks "id" or "secret"'


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            Fault(wrong_shape=True),
            'sinch: the organisations answer is not an object (or array of objects) with an "id"',
            id="bare-string",
        ),
        pytest.param(
            Fault(empty_listing=True),
            "sinch: the instance's user belongs to no organisation: set SINCH_ORGANISATION_ID",
            id="empty-array",
        ),
    ],
)
def test_unusable_organisations_answer_is_malformed(
    simulator: Simulator, fault: Fault, expected: str
) -> None:
    """An organisations answer without a usable id is a MalformedResponse saying what to do."""
    simulator.faults.add("sinch.organisations", fault)
    settings = login_settings(simulator)
    extractor = SinchExtractor(settings, build_session(settings, **FAST))
    with pytest.raises(MalformedResponse) as caught:
        extractor.accounts()
    assert str(caught.value) == expected


def test_no_secret_in_debug_logs_or_errors(
    simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A full log-in fetch, a renewal and a forced error leak no secret into logs or errors."""
    caplog.set_level("DEBUG")
    simulator.faults.add("sinch.numbers", Fault(status=401))
    simulator.faults.add("sinch.numbers", Fault(status=503), Fault(status=500), Fault(status=502))
    settings = login_settings(simulator, NUMBERS_ETL_HTTP_MAX_ATTEMPTS=3)
    session = build_session(settings, **FAST)
    extractor = SinchExtractor(settings, session)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any error; its text is checked
        count_sinch_records(extractor)
    secrets = {*session.secrets, *settings.secrets()}
    assert len(secrets) >= 5  # password, 2 tokens, 2 instance secrets
    text = caplog.text + str(caught.value) + repr(caught.value)
    assert [s for s in secrets if s in text] == []
    assert "sinch.instance" not in text  # sanity: the log is the client's, not the simulator's
    assert "HTTP 502" in str(caught.value)


def test_fixed_credentials_are_the_simulators(simulator: Simulator) -> None:
    """The simulator's fixed instance lists without any log-in or instance call."""
    settings = load_settings(**simulator.env())
    extractor = SinchExtractor(settings, build_session(settings))
    assert count_sinch_records(extractor) == 40
    assert settings.sinch_instance_id == SIM_SINCH_INSTANCE_ID
    assert SIM_SINCH_INSTANCE_SECRET in settings.secrets()
    assert [r.endpoint for r in simulator.requests] == ["sinch.numbers"]
