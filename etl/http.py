"""All HTTP policy in one place: session, retries, timeouts, status → error, redaction.

Adapters (etl/extract/*) call `send()` and `raise_for_provider_status()`, never
`requests.get`. User-Agent `numbers-etl/<version>`; TLS always verified;
redirects not followed; plain `http://` refused before any request unless the
host is loopback; every request has the settings' (connect, read) timeout.

Retries (urllib3, `EtlRetry`): connection errors, read timeouts and HTTP
429/500/502/503/504, for GET and POST, NUMBERS_ETL_HTTP_MAX_ATTEMPTS attempts in
all. The POSTs are Sinch's log-in and instance creation: a repeated log-in only
issues another token and a spare instance expires unused, so both are safe to
retry. 400/401/402/403/404 are never retried. Retry n waits
`backoff_factor * 2**(n-1)` + up to `backoff_jitter` s (≤ `backoff_max`), or the
Retry-After (seconds or HTTP-date, capped at RETRY_AFTER_CAP s) if longer, so
`Retry-After: 0` or a past date never hot-loops.

| after the retries                     | raised                                          |
|---------------------------------------|-------------------------------------------------|
| 401, 403                              | AuthError                                       |
| 429, 5xx                              | RetriableSourceError (provider body in message) |
| other non-2xx (400, 402, 404, 3xx, …) | ProviderError                                   |
| refused/reset connection, timeout     | RetriableSourceError                            |
| TLS failure, bad URL                  | FatalSourceError                                |
| body cut short or garbled mid-stream  | MalformedResponse (read timeout: Retriable)     |
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import random
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from etl import __version__
from etl.errors import (
    AuthError,
    FatalSourceError,
    MalformedResponse,
    ProviderError,
    RetriableSourceError,
    SourceError,
    redact,
)
from etl.settings import Settings, is_loopback_host

USER_AGENT = f"numbers-etl/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_METHODS = frozenset({"GET", "HEAD", "POST"})
RETRY_AFTER_CAP = 60
BACKOFF_FACTOR = 0.5
BACKOFF_JITTER = 0.5
BACKOFF_MAX = 30.0
BODY_CHUNK = 64 * 1024
ERROR_BODY_LIMIT = 64 * 1024
log = logging.getLogger("etl.http")


class EtlRetry(Retry):
    """urllib3 Retry with a backoff from the first retry, a floor under Retry-After, and logs."""

    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})

    def __init__(self, *args: Any, planned_wait: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.planned_wait = planned_wait

    def new(self, **kw: Any) -> Self:
        """A copy with changed counters; the planned wait is not carried over."""
        kw.setdefault("planned_wait", None)
        return super().new(**kw)

    def get_backoff_time(self) -> float:
        """`backoff_factor * 2**(n-1)` plus jitter for the n-th retry (n ≥ 1), capped."""
        retries = len(self.history)
        if retries == 0:
            return 0.0
        wait = self.backoff_factor * (2 ** (retries - 1))
        if self.backoff_jitter:
            wait += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, wait)))

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        """Retry-After in seconds (capped), or None when absent or unreadable."""
        try:
            return super().get_retry_after(response)
        except urllib3.exceptions.InvalidHeader:
            return None

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        """Count one failed attempt, plan the wait before the next, and log it."""
        new_retry = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = new_retry.get_backoff_time()
        if response is not None and self.respect_retry_after_header:
            retry_after = new_retry.get_retry_after(response)
            if retry_after is not None:
                wait = max(wait, retry_after)
        new_retry.planned_wait = wait
        attempts = (self.total or 0) + len(self.history) + 1
        reason = f"HTTP {response.status}" if response is not None else _describe(error)
        path, attempt = urlsplit(url or "").path, len(new_retry.history) + 1
        log.warning(
            "retrying %s %s after %s (attempt %d/%d) in %.2fs",
            *(method, path, reason, attempt, attempts, wait),
        )
        return new_retry

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        """Sleep the wait planned (and logged) by `increment`."""
        wait = self.planned_wait if self.planned_wait is not None else self.get_backoff_time()
        if wait > 0:
            time.sleep(wait)


class EtlSession(requests.Session):
    """A requests.Session that knows its timeouts and the secrets to redact."""

    def __init__(self, *, timeout: tuple[float, float], secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.timeout = timeout
        self.secrets: set[str] = set(secrets)


def build_session(
    settings: Settings,
    *,
    backoff_factor: float = BACKOFF_FACTOR,
    backoff_jitter: float = BACKOFF_JITTER,
    backoff_max: float = BACKOFF_MAX,
    retry_after_cap: float = RETRY_AFTER_CAP,
) -> EtlSession:
    """The one HTTP session of a run: retries, timeouts, User-Agent, TLS on."""
    session = EtlSession(
        timeout=(settings.http_connect_timeout, settings.http_read_timeout),
        secrets=settings.secrets(),
    )
    retry = EtlRetry(
        total=settings.http_max_attempts - 1,  # connect/read/status: counted in `total` only
        other=0,
        redirect=False,
        allowed_methods=RETRY_METHODS,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_jitter=backoff_jitter,
        backoff_max=backoff_max,
        retry_after_max=math.ceil(retry_after_cap),
        raise_on_status=False,  # the last response comes back to raise_for_provider_status
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.verify = True
    return session


def session_secrets(session: requests.Session) -> set[str]:
    """The secrets known to the session (settings plus tokens obtained at run time)."""
    return session.secrets if isinstance(session, EtlSession) else set()


def add_secret(session: requests.Session, value: str) -> None:
    """Register a secret obtained at run time (a token, an instance secret) for redaction."""
    if isinstance(session, EtlSession) and value:
        session.secrets.add(value)


def check_url(url: str, *, source: str, account_id: str | None = None) -> None:
    """Refuse plain http:// to a host that is not loopback, before any request."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return
    if parts.scheme == "http":
        message = f"refusing plain http:// to {parts.hostname}: use https:// (http is for loopback)"
    else:
        message = f"refusing URL scheme {parts.scheme!r}: use https://"
    raise FatalSourceError(message, source=source, account_id=account_id)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    source: str,
    account_id: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One request with the session's retries and timeouts; transport failures → SourceError."""
    check_url(url, source=source, account_id=account_id)
    if kwargs.get("verify") is False:
        raise ValueError("TLS verification cannot be turned off")
    timeout = session.timeout if isinstance(session, EtlSession) else (10.0, 60.0)
    kwargs.setdefault("timeout", timeout)
    kwargs.setdefault("allow_redirects", False)
    try:
        return session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        secrets, host = session_secrets(session), urlsplit(url).hostname
        raise to_source_error(
            exc, source=source, account_id=account_id, secrets=secrets, host=host
        ) from exc


def to_source_error(
    exc: BaseException,
    *,
    source: str,
    account_id: str | None,
    secrets: Iterable[str] = (),
    host: str | None = None,
    in_body: bool = False,
) -> SourceError:
    """The SourceError for a transport exception (requests, urllib3, socket, http.client)."""
    if isinstance(exc, SourceError):
        return exc
    where = f"{host}" if host else "the server"
    cause = _root_cause(exc)
    kind: type[SourceError]
    if isinstance(cause, ssl.SSLCertVerificationError):
        # Retrying cannot fix a certificate: fatal until someone acts. Other TLS errors
        # (a handshake or stream cut short) fall through to the transient branches.
        kind, text = FatalSourceError, f"TLS verification failed for {where} ({_describe(cause)})"
    elif isinstance(cause, urllib3.exceptions.NewConnectionError):
        kind, text = RetriableSourceError, f"cannot reach {where} ({_describe(cause)})"
    elif isinstance(cause, urllib3.exceptions.ConnectTimeoutError | requests.ConnectTimeout):
        kind, text = RetriableSourceError, f"timed out connecting to {where}"
    elif isinstance(
        cause, urllib3.exceptions.ReadTimeoutError | requests.ReadTimeout | socket.timeout
    ):
        part = "reading the response body" if in_body else "waiting for a response"
        kind, text = RetriableSourceError, f"timed out {part} from {where}"
    elif in_body or isinstance(
        exc,
        requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError,
    ):
        kind = MalformedResponse
        text = f"the response body was cut short or garbled ({_describe(cause)})"
    elif isinstance(exc, requests.ConnectionError):
        kind, text = RetriableSourceError, f"cannot reach {where} ({_describe(cause)})"
    else:
        kind, text = FatalSourceError, f"request failed: {_describe(cause)}"
    return kind(redact(text, secrets), source=source, account_id=account_id)


def is_transport_error(exc: BaseException) -> bool:
    """True for the errors a byte stream of a response (or an archive) raises when cut."""
    return isinstance(
        exc,
        requests.RequestException
        | urllib3.exceptions.HTTPError
        | http.client.HTTPException
        | OSError
        | EOFError
        | zlib.error,
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The most specific cause inside requests' and urllib3's wrappers."""
    inner: BaseException | None
    for _ in range(8):
        if isinstance(exc, urllib3.exceptions.MaxRetryError):
            inner = exc.reason
        else:
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        exc = inner
    return exc


def _describe(error: BaseException | None) -> str:
    """A short, URL-free description of a transport error."""
    if error is None:
        return "an error"
    error = _root_cause(error)
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "connection failed: " + str(error).rsplit(":", 1)[-1].strip()
    if isinstance(error, urllib3.exceptions.IncompleteRead):
        return f"received {error.partial} bytes, {error.expected} more expected"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ---- status → error -----------------------------------------------------


@dataclass(frozen=True)
class ErrorDetail:
    """What a provider's error body says, ready for an operator."""

    message: str
    code: str | None = None
    tracking_id: str | None = None
    fix: str | None = None
    provider: str | None = None


ErrorBodyParser = Callable[[int, Any], ErrorDetail | None]
"""(status, decoded JSON body or None) -> the provider's error detail, if it has one."""


def read_error_body(response: requests.Response) -> tuple[Any, str]:
    """The error body as (decoded JSON or None, text), read up to ERROR_BODY_LIMIT bytes."""
    try:
        data = next(response.iter_content(ERROR_BODY_LIMIT), b"")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        data = b""
    text = data.decode("utf-8", errors="replace").strip()
    try:
        return json.loads(text), text
    except ValueError:
        return None, text


def raise_for_provider_status(
    response: requests.Response,
    *,
    source: str,
    account_id: str | None,
    parse_error: ErrorBodyParser,
    secrets: Iterable[str] = (),
) -> None:
    """Return if the response is 2xx; else close it and raise the class for its status."""
    status = response.status_code
    if 200 <= status < 300:
        return
    try:
        body, text = read_error_body(response)
    finally:
        response.close()
    detail = parse_error(status, body)
    if detail is None:
        snippet = f": {text[:200]}" if text else ""
        detail = ErrorDetail(f"{response.reason or 'error'}{snippet}")
    message = redact(f"HTTP {status} from {urlsplit(response.url).path}: {detail.message}", secrets)
    if status in RETRY_STATUSES or status >= 500:
        attempts = _attempts(response)
        raise RetriableSourceError(
            f"{message} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})",
            source=source,
            account_id=account_id,
        )
    kind = AuthError if status in {401, 403} else ProviderError
    raise kind(
        message,
        source=source,
        account_id=account_id,
        status=status,
        code=detail.code,
        tracking_id=detail.tracking_id,
        fix=detail.fix,
        provider=detail.provider,
    )


def _attempts(response: requests.Response) -> int:
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if isinstance(retries, Retry) else 1
