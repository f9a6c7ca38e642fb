"""Fault knobs: per-endpoint queues of one-shot faults, plus two persistent settings.

Each request to an endpoint takes the next queued `Fault` of that endpoint, if any, and
answers accordingly; once the queue is empty the endpoint behaves normally again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

ENDPOINTS = (
    "sinch.login",
    "sinch.instance",
    "sinch.organisations",
    "sinch.numbers",
    "pingram.list",
)
OrganisationsShape = Literal["object", "array", "string-id"]
ORGANISATIONS_SHAPES: tuple[OrganisationsShape, ...] = ("object", "array", "string-id")


@dataclass(frozen=True)
class Fault:
    """How to answer one request; the defaults answer it normally.

    - ``status``: any status other than 200 is answered with the provider's documented
      error body for it (Sinch ``{"errorCode": status*100, "message"}``, Pingram
      ``{"trackingId", "error": {...}}``, Pingram 401 with no body), before any auth check.
    - ``retry_after``: sent verbatim as ``Retry-After`` (seconds or an HTTP-date);
      ``retry_after_in``: sent as the HTTP-date this many seconds after the answer.
    - ``delay``: seconds to wait before the status line; ``body_delay``: seconds to pause
      half-way through the body (after the headers and the first half of the records).
    - ``truncate``: send half the body, then drop the connection without the final chunk.
    - ``malformed``: insert non-JSON text half-way through the body.
    - ``wrong_shape``: a well-formed body of the wrong shape (Sinch listing an object,
      Pingram ``numbers`` an object, ``/v1/organisations`` a bare string...).
    - ``empty_listing``: the listing (or the organisations array) has no records.
    - ``bad_records``: append records that cannot be normalized (see ``etl.simulator.bad``).

    The body knobs only apply when the answer would be 200.
    """

    status: int = 200
    retry_after: str | None = None
    retry_after_in: float | None = None
    delay: float = 0.0
    body_delay: float = 0.0
    truncate: bool = False
    malformed: bool = False
    wrong_shape: bool = False
    empty_listing: bool = False
    bad_records: bool = False

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"not an HTTP status: {self.status}")
        if self.delay < 0 or self.body_delay < 0:
            raise ValueError("delays must not be negative")


def check_endpoint(endpoint: str) -> str:
    """The endpoint name, if it is one the simulator serves."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
    return endpoint


class Faults:
    """Per-endpoint FIFO queues of `Fault`, and the persistent knobs.

    - ``instance_ttl``: ``expiresIn`` of instances created from now on (default 3600 s),
      enforced: a request signed by an expired instance gets 401 errorCode 40100.
    - ``organisations_shape``: ``"object"`` (``{"id": 8888123, "name": ...}``, default),
      ``"array"`` (``[{...}]``) or ``"string-id"`` (``{"id": "8888123", ...}``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {name: deque() for name in ENDPOINTS}
        self.instance_ttl: int | None = None
        self.organisations_shape: OrganisationsShape = "object"

    def add(self, endpoint: str, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests to ``endpoint``, after those already queued."""
        check_endpoint(endpoint)
        with self._lock:
            self._queues[endpoint].extend(faults)

    def take(self, endpoint: str) -> Fault | None:
        """The next fault for ``endpoint``, removed from its queue; None when there is none."""
        with self._lock:
            queue = self._queues.get(endpoint)
            return queue.popleft() if queue else None

    def pending(self, endpoint: str) -> int:
        """How many faults are still queued for ``endpoint``."""
        with self._lock:
            return len(self._queues[check_endpoint(endpoint)])

    def clear(self) -> None:
        """Empty every queue and put the persistent knobs back to their defaults."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self.instance_ttl = None
            self.organisations_shape = "object"


_FLAGS: dict[str, Callable[[Fault], Fault]] = {
    "truncate": lambda f: replace(f, truncate=True),
    "malformed": lambda f: replace(f, malformed=True),
    "wrong-shape": lambda f: replace(f, wrong_shape=True),
    "empty": lambda f: replace(f, empty_listing=True),
    "bad-records": lambda f: replace(f, bad_records=True),
}
_OPTIONS: dict[str, Callable[[Fault, str], Fault]] = {
    "retry-after": lambda f, v: replace(f, retry_after=_whole_seconds(v)),
    "retry-after-date": lambda f, v: replace(f, retry_after_in=float(v)),
    "delay": lambda f, v: replace(f, delay=float(v)),
    "body-delay": lambda f, v: replace(f, body_delay=float(v)),
}


def _whole_seconds(value: str) -> str:
    if not value.strip().isdigit():
        raise ValueError("retry-after takes whole seconds")
    return value.strip()


def parse_fault(spec: str) -> tuple[str, list[Fault]]:
    """Parse the CLI fault syntax into an endpoint and its queue of faults.

    Grammar::

        spec    := ENDPOINT "=" item ("," item)*
        item    := action (":" option)* ["*" COUNT]
        action  := STATUS | "ok" | "truncate" | "malformed" | "wrong-shape" | "empty"
                 | "bad-records" | option          (an option alone answers normally)
        option  := "retry-after=" SECONDS          Retry-After: SECONDS
                 | "retry-after-date=" SECONDS     Retry-After: HTTP-date SECONDS from then
                 | "delay=" SECONDS                wait before answering
                 | "body-delay=" SECONDS           pause half-way through the body
                 | "truncate" | "malformed" | "wrong-shape" | "empty" | "bad-records"

    ENDPOINT is one of sinch.login, sinch.instance, sinch.organisations, sinch.numbers,
    pingram.list; STATUS a 3-digit HTTP status ("ok" = 200); ``*COUNT`` repeats the item.

    >>> parse_fault("sinch.numbers=503,503,200")[1][1]
    Fault(status=503, retry_after=None, retry_after_in=None, delay=0.0, body_delay=0.0, \
truncate=False, malformed=False, wrong_shape=False, empty_listing=False, bad_records=False)
    >>> endpoint, faults = parse_fault("pingram.list=429:retry-after=2*2,ok:body-delay=1.5")
    >>> endpoint, [(f.status, f.retry_after, f.body_delay) for f in faults]
    ('pingram.list', [(429, '2', 0.0), (429, '2', 0.0), (200, None, 1.5)])
    >>> parse_fault("sinch.numbers=truncate")[1][0].truncate
    True
    """
    endpoint, sep, items = spec.partition("=")
    endpoint = endpoint.strip()
    if not sep or not items.strip():
        raise ValueError(f"fault {spec!r} is not ENDPOINT=ITEM[,ITEM...]")
    check_endpoint(endpoint)
    faults: list[Fault] = []
    for item in items.split(","):
        body, star, count_text = item.strip().partition("*")
        count = _parse_count(count_text, spec) if star else 1
        fault = Fault()
        for part in body.split(":"):
            fault = _apply(fault, part.strip(), spec)
        faults.extend([fault] * count)
    return endpoint, faults


def _parse_count(text: str, spec: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"fault {spec!r}: repeat count must be a positive integer")
    return int(text)


def _apply(fault: Fault, part: str, spec: str) -> Fault:
    name, eq, value = part.partition("=")
    try:
        if part.isdigit():
            return replace(fault, status=int(part))
        if part == "ok":
            return replace(fault, status=200)
        if part in _FLAGS:
            return _FLAGS[part](fault)
        if eq and name in _OPTIONS:
            return _OPTIONS[name](fault, value)
    except ValueError as exc:
        raise ValueError(f"fault {spec!r}: {part!r}: {exc}") from None
    raise ValueError(f"fault {spec!r}: unknown item {part!r}")
