"""Sinch instance-signed requests (SPEC §4.1): the pure signer, the requests auth, the log-in.

- `sign_sinch_request` is pure and reproduces Sinch's published vector.
- `SinchInstanceAuth` signs each prepared request (Content-Type application/json
  on GETs too, x-timestamp now in UTC, the URL path, the body bytes).
- `SinchSession` holds fixed instance credentials, or logs in with
  SINCH_EMAIL/SINCH_PASSWORD, creates instances and renews them.

Every Sinch `Authorization` header is built in this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth

from etl.errors import AuthError, MalformedResponse
from etl.http import (
    USER_AGENT,
    ErrorDetail,
    add_secret,
    raise_for_provider_status,
    send,
    session_secrets,
)
from etl.settings import Settings


def content_md5(body: bytes | None) -> str:
    """Base64 of the MD5 of the body, or "" when there is no body.

    >>> content_md5(b'{"message":"Hello world"}')
    'jANzQ+rgAHyf1MWQFSwvYw=='
    """
    if not body:
        return ""
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324


def sign_sinch_request(
    *,
    verb: str,
    body: bytes | None,
    content_type: str | None,
    timestamp: str,
    path: str,
    secret: str,
) -> str:
    """The Sinch request signature: Base64(HMAC-SHA256(Base64Decode(secret), StringToSign)).

    StringToSign = VERB \\n ContentMD5 \\n ContentType \\n "x-timestamp:" timestamp \\n path

    >>> sign_sinch_request(verb="POST", body=b'{"message":"Hello world"}',
    ...     content_type="application/json", timestamp="2014-06-04T13:41:58Z",
    ...     path="/v1/sms/+46700000000", secret="JViE5vDor0Sw3WllZka15Q==")
    'qDXMwzfaxCRS849c/2R0hg0nphgdHciTo7OdM6MsdnM='
    """
    string_to_sign = "\n".join(
        [verb.upper(), content_md5(body), content_type or "", f"x-timestamp:{timestamp}", path]
    )
    key = base64.b64decode(secret)
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


# ---- requests auth and the log-in session ---------------------------------

SINCH_APPLICATION_KEY = "669762D5-2B10-44E0-8418-BC9EE4457555"
"""Sinch's fixed, public key of the number-administration application (SPEC §4.1)."""
SOURCE = "sinch"
RENEW_MARGIN = 60.0
"""Renew an instance this many seconds before it expires (at most 10 % of its lifetime)."""

log = logging.getLogger("etl.extract.sinch")

_HINTS = {
    40100: "check the Authorization header and the credentials",
    40101: "check this machine's clock: Sinch refused the x-timestamp",
    40102: "check SINCH_INSTANCE_SECRET; the instance may have expired",
    40300: "the instance's user does not own this organisation (check SINCH_ORGANISATION_ID)",
    40301: "the 'instance' authorization scheme is required",
}


def sinch_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds, as Sinch's own client sends it.

    >>> sinch_timestamp(datetime(2015, 6, 20, 11, 43, 10, 944000, tzinfo=UTC))
    '2015-06-20T11:43:10.944Z'
    """
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def parse_sinch_error(status: int, body: Any) -> ErrorDetail | None:
    """Sinch's `{"errorCode", "message"}` with a hint for the operator.

    >>> parse_sinch_error(403, {"errorCode": 40301, "message": "Invalid scheme"}).message
    "Sinch error 40301: Invalid scheme (the 'instance' authorization scheme is required)"
    """
    if not isinstance(body, dict) or "errorCode" not in body:
        return None
    raw_code = body.get("errorCode")
    try:
        code: int | None = int(raw_code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        code = None
    message = str(body.get("message") or "no message")
    hint = _HINTS.get(code) if code is not None else None
    text = f"Sinch error {raw_code}: {message}" + (f" ({hint})" if hint else "")
    return ErrorDetail(text, code=str(raw_code), fix=hint)


def _body_bytes(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body or None
    if isinstance(body, str):
        return body.encode("utf-8") or None
    raise TypeError("Sinch-signed requests need a bytes or str body (not a stream)")


class SinchInstanceAuth(requests.auth.AuthBase):
    """Signs each request with an instance: `Authorization: Instance {id}:{signature}`."""

    def __init__(self, instance_id: str, secret: str) -> None:
        self.instance_id = instance_id
        self._secret = secret

    def __repr__(self) -> str:
        return f"SinchInstanceAuth(instance_id={self.instance_id!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        content_type = request.headers.setdefault("Content-Type", "application/json")
        timestamp = sinch_timestamp()
        signature = sign_sinch_request(
            verb=request.method or "GET",
            body=_body_bytes(request.body),
            content_type=content_type,
            timestamp=timestamp,
            path=urlsplit(request.url or "").path,
            secret=self._secret,
        )
        request.headers["x-timestamp"] = timestamp
        request.headers["Authorization"] = f"Instance {self.instance_id}:{signature}"
        return request


class _UserAuth(requests.auth.AuthBase):
    """`Authorization: User {token}` for creating an instance."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"User {self._token}"
        return request


class _ApplicationAuth(requests.auth.AuthBase):
    """`Authorization: Application {key}` plus x-timestamp, for logging in."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Application {SINCH_APPLICATION_KEY}"
        request.headers["x-timestamp"] = sinch_timestamp()
        return request


class SinchSession:
    """Instance credentials for signed calls: fixed, or from a log-in renewed before expiry.

    With SINCH_EMAIL/SINCH_PASSWORD it logs in, creates an instance, creates a
    new one `RENEW_MARGIN` seconds (at most 10 % of its lifetime) before the old
    expires, and once more when a signed call is refused with 401, retrying
    that call once. With fixed credentials a 401 is an AuthError.
    """

    def __init__(
        self,
        settings: Settings,
        session: requests.Session,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._session = session
        self._clock = clock
        self._auth: SinchInstanceAuth | None = None
        self._renew_at: float | None = None
        if settings.sinch_instance_id and settings.sinch_instance_secret:
            self._auth = SinchInstanceAuth(
                settings.sinch_instance_id, settings.sinch_instance_secret.get_secret_value()
            )
        self.logs_in = self._auth is None and bool(settings.sinch_email)
        self.instances_created = 0

    def fetch_signed(
        self, method: str, url: str, *, account_id: str | None = None, stream: bool = False
    ) -> requests.Response:
        """An instance-signed request whose status has been checked (2xx or raised)."""
        response = self._send_signed(method, url, account_id=account_id, stream=stream)
        if response.status_code == 401 and self.logs_in:
            response.close()
            log.info("Sinch refused the instance (HTTP 401); creating a new one and retrying once")
            self.fetch_instance()
            response = self._send_signed(method, url, account_id=account_id, stream=stream)
        raise_for_provider_status(
            response,
            source=SOURCE,
            account_id=account_id,
            parse_error=parse_sinch_error,
            secrets=session_secrets(self._session),
        )
        return response

    def _send_signed(
        self, method: str, url: str, *, account_id: str | None, stream: bool
    ) -> requests.Response:
        return send(
            self._session,
            method,
            url,
            source=SOURCE,
            account_id=account_id,
            auth=self._current_auth(),
            stream=stream,
        )

    def _current_auth(self) -> SinchInstanceAuth:
        if self._auth is None or (
            self.logs_in and self._renew_at is not None and self._clock() >= self._renew_at
        ):
            if self._auth is not None:
                log.info("Sinch instance %s expires soon; renewing it", self._auth.instance_id)
            self.fetch_instance()
        assert self._auth is not None
        return self._auth

    def fetch_login_token(self) -> str:
        """Log in with SINCH_EMAIL/SINCH_PASSWORD; the user's authorization token."""
        email, password = self._settings.sinch_email, self._settings.sinch_password
        if not email or password is None:
            raise AuthError("no Sinch log-in is configured (SINCH_EMAIL)", source=SOURCE)
        login_url = self._settings.sinch_login_url
        url = f"{login_url}/v1/users/email/{quote(email, safe='@')}/authentication"
        response = send(
            self._session,
            "POST",
            url,
            source=SOURCE,
            auth=_ApplicationAuth(),
            json={"password": password.get_secret_value()},
        )
        if response.status_code in {400, 401, 403, 404}:
            response.close()
            raise AuthError(
                f"Sinch refused the log-in for {email} (HTTP {response.status_code}): "
                "check SINCH_EMAIL and SINCH_PASSWORD",
                source=SOURCE,
                status=response.status_code,
            )
        body = self._json(response)
        token = body.get("authorization") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponse(
                "the Sinch log-in answer has no authorization token", source=SOURCE
            )
        add_secret(self._session, token)
        return token

    def fetch_instance(self) -> SinchInstanceAuth:
        """Log in and create a new instance; it signs every later call."""
        if not self.logs_in:
            raise AuthError(
                "Sinch refused the fixed instance: check SINCH_INSTANCE_ID and "
                "SINCH_INSTANCE_SECRET (instances expire; SINCH_EMAIL/SINCH_PASSWORD renew them)",
                source=SOURCE,
            )
        token = self.fetch_login_token()
        response = send(
            self._session,
            "POST",
            f"{self._settings.sinch_api_url}/v1/instance",
            source=SOURCE,
            auth=_UserAuth(token),
            json={
                "authorization": token,
                "version": {"os": platform.system() or "unknown", "platform": USER_AGENT},
            },
        )
        body = self._json(response)
        instance_id = body.get("id") if isinstance(body, dict) else None
        secret = body.get("secret") if isinstance(body, dict) else None
        if not isinstance(instance_id, str | int) or not isinstance(secret, str) or not secret:
            raise MalformedResponse(
                'the Sinch instance answer lacks "id" or "secret"', source=SOURCE
            )
        add_secret(self._session, secret)
        try:
            base64.b64decode(secret, validate=True)
        except ValueError:
            raise MalformedResponse(
                "the Sinch instance secret is not base64", source=SOURCE
            ) from None
        self._auth = SinchInstanceAuth(str(instance_id), secret)
        self.instances_created += 1
        ttl = body.get("expiresIn")
        if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl > 0:
            self._renew_at = self._clock() + ttl - min(RENEW_MARGIN, ttl * 0.1)
        else:
            self._renew_at = None
        log.info("created Sinch instance %s (expires in %ss)", instance_id, ttl)
        return self._auth

    def _json(self, response: requests.Response) -> Any:
        raise_for_provider_status(
            response,
            source=SOURCE,
            account_id=None,
            parse_error=parse_sinch_error,
            secrets=session_secrets(self._session),
        )
        try:
            return response.json(parse_float=Decimal)
        except ValueError:
            raise MalformedResponse(
                f"the answer to {urlsplit(response.url).path} is not JSON", source=SOURCE
            ) from None
