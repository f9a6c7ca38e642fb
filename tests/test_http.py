"""etl.http against the simulator on loopback: retries, Retry-After, timeouts, errors, redaction."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
import requests

from etl import __version__
from etl.errors import (
    AuthError,
    FatalSourceError,
    MalformedResponse,
    ProviderError,
    RetriableSourceError,
    SourceError,
)
from etl.extract.pingram import PingramExtractor, parse_pingram_error, parse_pingram_listing
from etl.extract.pingram_auth import PingramAuth
from etl.http import (
    EtlRetry,
    build_session,
    raise_for_provider_status,
    redact,
    send,
)
from etl.settings import Settings, load_settings
from etl.simulator import SIM_PINGRAM_API_KEY, Fault, Simulator

FAST = {"backoff_factor": 0.01, "backoff_jitter": 0.0}


def settings_for(simulator: Simulator, **env: Any) -> Settings:
    """Settings pointing at the simulator, with environment-name overrides."""
    return load_settings(**{**simulator.env(), **{k: str(v) for k, v in env.items()}})


def fetch_pingram(settings: Settings, session: requests.Session) -> requests.Response:
    """One checked GET of the Pingram listing through the HTTP policy."""
    response = send(
        session,
        "GET",
        f"{settings.pingram_url}/numbers/list",
        source="pingram",
        account_id="default",
        auth=PingramAuth(SIM_PINGRAM_API_KEY),
    )
    raise_for_provider_status(
        response, source="pingram", account_id="default", parse_error=parse_pingram_error
    )
    return response


def list_pingram(settings: Settings, session: requests.Session) -> list[Any]:
    """Every record of the Pingram listing, streamed through the extractor."""
    extractor = PingramExtractor(settings, session)
    with extractor.open_listing("default") as body:
        return list(parse_pingram_listing(body, account_id="default").records)


def test_user_agent_is_sent(simulator: Simulator) -> None:
    """Every request carries User-Agent numbers-etl/<version>."""
    settings = settings_for(simulator)
    response = fetch_pingram(settings, build_session(settings))
    assert response.request.headers["User-Agent"] == f"numbers-etl/{__version__}"


def test_session_always_verifies_tls(simulator: Simulator) -> None:
    """The session verifies TLS and refuses a request that would turn it off."""
    settings = settings_for(simulator)
    session = build_session(settings)
    assert session.verify is True
    with pytest.raises(ValueError, match="TLS verification"):
        send(session, "GET", f"{simulator.url}/numbers/list", source="pingram", verify=False)


def test_two_503_then_200_succeeds_in_three_requests(simulator: Simulator) -> None:
    """503, 503, 200 → exactly three requests and the listing."""
    simulator.faults.add("pingram.list", Fault(status=503), Fault(status=503))
    settings = settings_for(simulator)
    records = list_pingram(settings, build_session(settings, **FAST))
    assert (len(records), simulator.count("pingram.list")) == (40, 3)


def test_always_503_makes_max_attempts_then_retriable(simulator: Simulator) -> None:
    """With NUMBERS_ETL_HTTP_MAX_ATTEMPTS=3 an always-503 endpoint gets exactly 3 requests."""
    simulator.faults.add("pingram.list", *[Fault(status=503)] * 5)
    settings = settings_for(simulator, NUMBERS_ETL_HTTP_MAX_ATTEMPTS=3)
    with pytest.raises(RetriableSourceError) as caught:
        fetch_pingram(settings, build_session(settings, **FAST))
    assert simulator.count("pingram.list") == 3
    assert "HTTP 503" in str(caught.value)
    assert "gave up after 3 attempts" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(400, ProviderError, id="400-provider-error"),
        pytest.param(401, AuthError, id="401-auth-error"),
        pytest.param(402, ProviderError, id="402-provider-error"),
        pytest.param(403, AuthError, id="403-auth-error"),
        pytest.param(404, ProviderError, id="404-provider-error"),
    ],
)
def test_client_errors_are_never_retried(
    simulator: Simulator, status: int, expected: type[SourceError]
) -> None:
    """400/401/402/403/404 are answered by one request and the status's fatal class."""
    simulator.faults.add("pingram.list", Fault(status=status), Fault(status=status))
    settings = settings_for(simulator)
    with pytest.raises(expected) as caught:
        fetch_pingram(settings, build_session(settings, **FAST))
    assert type(caught.value) is expected
    assert simulator.count("pingram.list") == 1
    assert isinstance(caught.value, ProviderError)
    assert caught.value.status == status


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_server_errors_after_retries_are_retriable(simulator: Simulator, status: int) -> None:
    """429 and 5xx are retried, then surface as RetriableSourceError."""
    simulator.faults.add("pingram.list", Fault(status=status), Fault(status=status))
    settings = settings_for(simulator, NUMBERS_ETL_HTTP_MAX_ATTEMPTS=2)
    with pytest.raises(RetriableSourceError, match=f"HTTP {status}"):
        fetch_pingram(settings, build_session(settings, **FAST))
    assert simulator.count("pingram.list") == 2


def test_retry_after_seconds_is_honoured(simulator: Simulator) -> None:
    """429 with Retry-After: 2 waits at least 2 seconds before the successful retry."""
    simulator.faults.add("pingram.list", Fault(status=429, retry_after="2"))
    settings = settings_for(simulator)
    started = time.monotonic()
    fetch_pingram(settings, build_session(settings, **FAST))
    assert time.monotonic() - started >= 2.0
    assert simulator.count("pingram.list") == 2


def test_retry_after_http_date_is_honoured(simulator: Simulator) -> None:
    """503 with Retry-After as an HTTP-date ~2 s ahead waits until about then (1 s resolution)."""
    simulator.faults.add("pingram.list", Fault(status=503, retry_after_in=2.0))
    settings = settings_for(simulator)
    started = time.monotonic()
    fetch_pingram(settings, build_session(settings, **FAST))
    assert time.monotonic() - started >= 1.0
    assert simulator.count("pingram.list") == 2


def test_retry_after_zero_does_not_hot_loop(simulator: Simulator) -> None:
    """Retry-After: 0 still waits the backoff (0.3 s here) before each retry."""
    simulator.faults.add("pingram.list", *[Fault(status=429, retry_after="0")] * 2)
    settings = settings_for(simulator)
    started = time.monotonic()
    fetch_pingram(settings, build_session(settings, backoff_factor=0.3, backoff_jitter=0.0))
    # waits 0.3 s then 0.6 s
    assert time.monotonic() - started >= 0.9
    assert simulator.count("pingram.list") == 3


def test_retry_after_is_capped(simulator: Simulator) -> None:
    """A Retry-After of an hour waits only the cap (1 s here)."""
    simulator.faults.add("pingram.list", Fault(status=503, retry_after="3600"))
    settings = settings_for(simulator)
    started = time.monotonic()
    fetch_pingram(settings, build_session(settings, **FAST, retry_after_cap=1))
    assert 1.0 <= time.monotonic() - started < 5.0


def test_each_retry_is_logged_without_query_or_secret(
    simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry logs method, path, status, attempt n/N and the wait at WARNING on etl.http."""
    simulator.faults.add("pingram.list", Fault(status=503))
    settings = settings_for(simulator)
    caplog.set_level(logging.WARNING, logger="etl.http")
    fetch_pingram(settings, build_session(settings, backoff_factor=0.05, backoff_jitter=0.0))
    messages = [r.getMessage() for r in caplog.records if r.name == "etl.http"]
    assert messages == ["retrying GET /numbers/list after HTTP 503 (attempt 2/5) in 0.05s"]


def test_read_timeout_fails_within_bound(simulator: Simulator) -> None:
    """A server slower than the read timeout fails as RetriableSourceError in bounded time."""
    simulator.faults.add("pingram.list", Fault(delay=1.0), Fault(delay=1.0))
    settings = settings_for(
        simulator, NUMBERS_ETL_HTTP_READ_TIMEOUT=0.2, NUMBERS_ETL_HTTP_MAX_ATTEMPTS=2
    )
    started = time.monotonic()
    with pytest.raises(RetriableSourceError) as caught:
        fetch_pingram(settings, build_session(settings, **FAST))
    assert time.monotonic() - started < 0.9  # 2 x 0.2 s plus the backoff, not 2 x 1 s
    assert str(caught.value) == "pingram/default: timed out waiting for a response from 127.0.0.1"
    # the simulator logs a request when it answers: let both late answers land in this test
    deadline = time.monotonic() + 5
    while simulator.count("pingram.list") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert simulator.count("pingram.list") == 2


def test_read_timeout_mid_body_is_retriable(simulator: Simulator) -> None:
    """A pause mid-body longer than the read timeout fails the iteration as retriable."""
    simulator.faults.add("pingram.list", Fault(body_delay=2.0))
    settings = settings_for(simulator, NUMBERS_ETL_HTTP_READ_TIMEOUT=0.3)
    started = time.monotonic()
    with pytest.raises(RetriableSourceError, match="timed out reading the response body"):
        list_pingram(settings, build_session(settings, **FAST))
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_retriable_after_attempts() -> None:
    """A closed port is retried up to the attempts, then RetriableSourceError."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = load_settings(
        PINGRAM_API_KEY="pingram_sk_test",
        PINGRAM_BASE_URL=f"http://127.0.0.1:{port}",
        NUMBERS_ETL_HTTP_MAX_ATTEMPTS="2",
    )
    with pytest.raises(RetriableSourceError) as caught:
        fetch_pingram(settings, build_session(settings, **FAST))
    expected = (
        "pingram/default: cannot reach 127.0.0.1 "
        "(connection failed: [Errno 111] Connection refused)"
    )
    assert str(caught.value) == expected


def test_plain_http_to_remote_host_is_refused_before_any_request() -> None:
    """http:// to a non-loopback host is refused at once, without connecting."""
    session = build_session(load_settings())
    started = time.monotonic()
    with pytest.raises(FatalSourceError) as caught:
        send(session, "GET", "http://10.255.255.1/numbers/list", source="pingram")
    assert time.monotonic() - started < 0.5
    expected = (
        "pingram: refusing plain http:// to 10.255.255.1: use https:// (http is for loopback)"
    )
    assert str(caught.value) == expected


def test_unknown_path_is_provider_error_with_body_text(simulator: Simulator) -> None:
    """A 404 without a provider error body is a ProviderError quoting the body text."""
    settings = settings_for(simulator)
    response = send(build_session(settings), "GET", f"{simulator.url}/nowhere", source="pingram")
    with pytest.raises(ProviderError) as caught:
        raise_for_provider_status(
            response, source="pingram", account_id=None, parse_error=lambda status, body: None
        )
    expected = 'pingram: HTTP 404 from /nowhere: Not Found: {"message":"No route for /nowhere"}'
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        pytest.param("key sk_123456 refused", ["sk_123456"], "key *** refused", id="secret"),
        pytest.param("Bearer abcdefghijkl", [], "Bearer ***", id="bearer"),
        pytest.param(
            "Instance 0a6b1c2d:PToDaAs7AiJDqGKZHCl3may=", [], "Instance ***", id="instance"
        ),
        pytest.param("nothing here", ["", "x-not-there"], "nothing here", id="untouched"),
    ],
)
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    """redact() masks given secrets and credential-looking Authorization values."""
    assert redact(text, secrets) == expected


def test_backoff_starts_at_the_first_retry() -> None:
    """The first retry already waits backoff_factor; later ones double, capped at backoff_max."""
    retry = EtlRetry(total=10, backoff_factor=0.5, backoff_jitter=0.0, backoff_max=3.0)
    waits = []
    for _ in range(5):
        retry = retry.increment(method="GET", url="/x", error=ConnectionError("refused"))
        waits.append(retry.get_backoff_time())
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_malformed_listing_is_malformed_response(simulator: Simulator) -> None:
    """Non-JSON text mid-body raises MalformedResponse while iterating."""
    simulator.faults.add("pingram.list", Fault(malformed=True))
    settings = settings_for(simulator)
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        list_pingram(settings, build_session(settings))


def test_no_secret_in_debug_logs_of_both_sources(
    simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Full fetches of both sources (Sinch by log-in), with retries, log no secret at DEBUG."""
    from etl.extract.sinch import SinchExtractor, parse_sinch_listing

    caplog.set_level(logging.DEBUG)
    simulator.faults.add("sinch.numbers", Fault(status=503))
    simulator.faults.add("pingram.list", Fault(status=429, retry_after="0"))
    settings = load_settings(**simulator.login_env())
    session = build_session(settings, **FAST)
    sinch = SinchExtractor(settings, session)
    for account in sinch.accounts():
        with sinch.open_listing(account) as body:
            assert sum(1 for _ in parse_sinch_listing(body, account_id=account).records) == 40
    assert len(list_pingram(settings, session)) == 40
    secrets = session.secrets
    assert len(secrets) == 4  # password, API key, log-in token, instance secret
    assert [s for s in secrets if s in caplog.text] == []
    assert "retrying GET /numbers/list after HTTP 429" in caplog.text


def test_only_a_certificate_failure_is_a_fatal_tls_error() -> None:
    """An untrusted certificate is fatal; a TLS stream cut short is transient (retried next run)."""
    import ssl

    import requests

    from etl.errors import FatalSourceError, RetriableSourceError
    from etl.http import to_source_error

    refused = requests.exceptions.SSLError(
        ssl.SSLCertVerificationError(1, "certificate verify failed")
    )
    refused.__cause__ = refused.args[0]
    cut = requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    cut.__cause__ = cut.args[0]
    assert type(to_source_error(refused, source="s", account_id="a")) is FatalSourceError
    assert type(to_source_error(cut, source="s", account_id="a")) is RetriableSourceError
