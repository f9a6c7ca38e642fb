"""Pingram `GET /numbers/list` (SPEC §4.2): bearer API key, streamed listing, error bodies.

The body is `{"numbers": [...], "sharedNumber": "..."}`; `parse_pingram_listing`
streams the numbers and puts `sharedNumber` in `extras["shared_number"]`.
`sharedNumber` is documented as required, but a listing without it is still
complete for our purpose, so its absence leaves `shared_number` None rather
than failing the source; a missing or non-array `numbers` is a MalformedResponse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import requests

from etl.errors import ConfigError
from etl.extract._json import Listing, parse_object_array, streamed_body
from etl.extract.pingram_auth import PingramAuth
from etl.http import (
    ErrorDetail,
    raise_for_provider_status,
    send,
    session_secrets,
)
from etl.settings import Settings

SOURCE = "pingram"
API_KEY_REFUSED = "API key refused (check PINGRAM_API_KEY)"


def parse_pingram_error(status: int, body: Any) -> ErrorDetail | None:
    """Pingram's `{"trackingId", "error": {code, message, fix?, provider?, providerCode?}}`.

    >>> parse_pingram_error(402, {"trackingId": "trk_1", "error": {"code": "usage_limit_exceeded",
    ...     "message": "Usage limit exceeded", "fix": "Upgrade your plan."}}).message
    'usage_limit_exceeded: Usage limit exceeded; fix: Upgrade your plan.; trackingId: trk_1'
    >>> parse_pingram_error(401, None).message
    'API key refused (check PINGRAM_API_KEY)'
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ErrorDetail(API_KEY_REFUSED) if status == 401 else None
    tracking_id = _text(body.get("trackingId"))
    code, message = _text(error.get("code")), _text(error.get("message"))
    fix, provider = _text(error.get("fix")), _text(error.get("provider"))
    provider_code = _text(error.get("providerCode"))
    parts = [f"{code or 'error'}: {message or 'no message'}"]
    if fix:
        parts.append(f"fix: {fix}")
    if provider:
        parts.append(f"provider: {provider}" + (f" {provider_code}" if provider_code else ""))
    if tracking_id:
        parts.append(f"trackingId: {tracking_id}")
    if status == 401:
        parts.append("check PINGRAM_API_KEY")
    return ErrorDetail(
        "; ".join(parts), code=code, tracking_id=tracking_id, fix=fix, provider=provider
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class PingramExtractor:
    """The Pingram side of a sync: one configured account and its listing as a byte stream."""

    def __init__(self, settings: Settings, session: requests.Session) -> None:
        if settings.pingram_api_key is None:
            raise ConfigError("PINGRAM_API_KEY is required for the pingram source")
        self._settings = settings
        self._session = session
        self._auth = PingramAuth(settings.pingram_api_key.get_secret_value())

    def accounts(self) -> list[str]:
        """The configured PINGRAM_ACCOUNT (Pingram lists one account per key)."""
        return [self._settings.pingram_account]

    def fetch_listing(self, account_id: str) -> requests.Response:
        """`GET {base}/numbers/list`, streamed, its status checked."""
        response = send(
            self._session,
            "GET",
            f"{self._settings.pingram_url}/numbers/list",
            source=SOURCE,
            account_id=account_id,
            auth=self._auth,
            stream=True,
        )
        raise_for_provider_status(
            response,
            source=SOURCE,
            account_id=account_id,
            parse_error=parse_pingram_error,
            secrets=session_secrets(self._session),
        )
        return response

    @contextmanager
    def open_listing(self, account_id: str) -> Iterator[BinaryIO]:
        """The listing's decoded body byte stream; the response is closed on exit."""
        response = self.fetch_listing(account_id)
        with streamed_body(
            response, source=SOURCE, account_id=account_id, secrets=session_secrets(self._session)
        ) as body:
            yield body


def parse_pingram_listing(body: BinaryIO, *, account_id: str) -> Listing:
    """The numbers of a Pingram listing, streamed; `extras["shared_number"]` when done.

    >>> import io
    >>> listing = parse_pingram_listing(io.BytesIO(
    ...     b'{"numbers": [{"phoneNumber": "+14155550100", "monthlyPrice": 1.15}],'
    ...     b' "sharedNumber": "+14155550199"}'), account_id="default")
    >>> list(listing.records)
    [{'phoneNumber': '+14155550100', 'monthlyPrice': Decimal('1.15')}]
    >>> listing.extras
    {'shared_number': '+14155550199'}
    """
    return parse_object_array(
        body,
        source=SOURCE,
        account_id=account_id,
        array_key="numbers",
        extra_keys={"sharedNumber": "shared_number"},
    )
