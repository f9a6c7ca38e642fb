"""Pingram's bearer API key: the only place its `Authorization` header is built."""

from __future__ import annotations

import requests
import requests.auth


class PingramAuth(requests.auth.AuthBase):
    """`Authorization: Bearer {api key}` on every request."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        return "PingramAuth(api_key=***)"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request
