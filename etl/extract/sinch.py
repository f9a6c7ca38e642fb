"""Sinch "List all rented numbers" (SPEC §4.1): organisation lookup and the signed listing.

`GET {SINCH_BASE_URL}/v1/organisations/id/{organisationId}/numbers` answers a
JSON array of Number objects, streamed by `parse_sinch_listing`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import requests

from etl.errors import MalformedResponse
from etl.extract._json import Listing, parse_array, streamed_body
from etl.extract.sinch_auth import SOURCE, SinchSession
from etl.http import session_secrets
from etl.settings import Settings


class SinchExtractor:
    """The Sinch side of a sync: which organisation, and its listing as a byte stream."""

    def __init__(self, settings: Settings, session: requests.Session) -> None:
        self._settings = settings
        self._session = session
        self.auth = SinchSession(settings, session)
        self._organisation_id: str | None = None

    def accounts(self) -> list[str]:
        """SINCH_ORGANISATION_ID, else the organisation of the instance's user (looked up once)."""
        if self._settings.sinch_organisation_id:
            return [self._settings.sinch_organisation_id]
        if self._organisation_id is None:
            self._organisation_id = self.fetch_organisation_id()
        return [self._organisation_id]

    def fetch_organisation_id(self) -> str:
        """`GET {SINCH_API_URL}/v1/organisations`: an object or an array (the first), id as str."""
        response = self.auth.fetch_signed("GET", f"{self._settings.sinch_api_url}/v1/organisations")
        try:
            body = response.json()
        except ValueError:
            raise MalformedResponse("the organisations answer is not JSON", source=SOURCE) from None
        return to_organisation_id(body)

    @contextmanager
    def open_listing(self, account_id: str) -> Iterator[BinaryIO]:
        """The numbers listing of one organisation as the decoded body byte stream."""
        url = f"{self._settings.sinch_base_url}/v1/organisations/id/{account_id}/numbers"
        response = self.auth.fetch_signed("GET", url, account_id=account_id, stream=True)
        with streamed_body(
            response, source=SOURCE, account_id=account_id, secrets=session_secrets(self._session)
        ) as body:
            yield body


def to_organisation_id(body: Any) -> str:
    """The organisation id of a `/v1/organisations` answer (object, or array → first).

    >>> to_organisation_id([{"id": 8888123, "name": "Acme"}])
    '8888123'
    >>> to_organisation_id({"id": "8888123"})
    '8888123'
    """
    if isinstance(body, list):
        if not body:
            raise MalformedResponse(
                "the instance's user belongs to no organisation: set SINCH_ORGANISATION_ID",
                source=SOURCE,
            )
        body = body[0]
    org_id = body.get("id") if isinstance(body, dict) else None
    if isinstance(org_id, bool) or not isinstance(org_id, int | str) or not str(org_id).strip():
        raise MalformedResponse(
            'the organisations answer is not an object (or array of objects) with an "id"',
            source=SOURCE,
        )
    return str(org_id).strip()


def parse_sinch_listing(body: BinaryIO, *, account_id: str) -> Listing:
    """The Number objects of a Sinch listing (a top-level JSON array), streamed.

    >>> import io
    >>> body = io.BytesIO(b'[{"number": 14150005550, "cost": {"amount": 0.50}}]')
    >>> list(parse_sinch_listing(body, account_id="8888123").records)
    [{'number': 14150005550, 'cost': {'amount': Decimal('0.50')}}]
    """
    return parse_array(body, source=SOURCE, account_id=account_id)
