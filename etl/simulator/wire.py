"""What the provider modules see of a request, and what they answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from etl.simulator.data import Listing


@dataclass(frozen=True)
class Request:
    """One HTTP request as received: method, path without the query, headers, raw body."""

    method: str
    path: str
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """An answer: a status plus a small complete body (None: no body) or a streamed listing."""

    status: int
    body: bytes | None = None
    listing: Listing | None = None
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, value: Any) -> Reply:
    """A reply whose body is ``value`` as compact JSON."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return Reply(status, text.encode("utf-8"))
