"""The simulator's dataset: deterministic listings of N numbers, rendered record by record.

Everything follows from ``(numbers, seed, revision)`` plus an *anchor* date (00:00 UTC of
the day the simulator started), which only dated fields relative to "now" use:

- Record ``i`` (0 <= i < numbers) of a listing draws all its attributes from one 64-bit
  hash of ``(provider, seed, i)``; its subscriber part is an affine permutation of ``i``, so
  the numbers of one listing are unique (up to 8,000,000 of them). Sinch and Pingram use
  different salts, so their numbers differ.
- Revision ``r >= 1`` changes exactly the records whose index ``i % 100 == 0``
  (``changed_indices``): Sinch adds ``r`` cents to ``cost.amount``, Pingram renames the
  ``label``. Any two different revisions differ in exactly those records and nothing else.
- Records are rendered as compact JSON text straight from string templates, never as one
  list of the whole listing: ``Listing.batch(start, stop)`` renders a slice.

Sinch: countries US/CA (NANP, real area codes, some toll-free), GB, DE, SE, FR, AU, NL;
``capabilities`` sometimes mixed case or duplicated; ``applicationKey`` on 5/16 of the
records; ``expires`` absent on 15%, within the next 30 days on 10%, else 31-730 days out;
``cost.amount`` with two decimals (0.00, 0.10 and 1.25 included), USD or EUR.
Pingram: half old schema (formatted ``phoneNumber``, ``label`` absent on 5/32, ``createdAt``),
half new schema (E.164, ``countryCode``, ``numberType``, ``billingStatus`` with 1/16
``released`` + ``releasedAt``, else ``nextBillingDate``, ``monthlyPrice``, and an unknown
``capabilities`` object); ``sharedNumber`` comes *after* the array.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from etl.simulator.templates import (
    PINGRAM_PICK,
    SINCH_PICK,
    SUBSCRIBER_BASE,
    SUBSCRIBER_SPAN,
    Template,
    displayer,
)

MAX_NUMBERS = SUBSCRIBER_SPAN
CHANGE_STRIDE = 100
_MASK = (1 << 64) - 1
_SINCH_SALT = 0x5135_C400_0000_0000
_PINGRAM_SALT = 0x9196_7A30_0000_0000


def today_anchor() -> date:
    """Today's date in UTC: the anchor of dates relative to now (expiries, billing dates)."""
    return datetime.now(UTC).date()


def changed_indices(numbers: int, seed: int, revision: int) -> range:
    """Indices of the records that revision ``revision`` changes relative to any other.

    >>> list(changed_indices(250, 7, 1))
    [0, 100, 200]
    >>> len(changed_indices(250, 7, 0))
    0
    """
    del seed  # the same indices for every seed, so tests can name them
    return range(0, numbers, CHANGE_STRIDE) if revision else range(0)


def changed_count(numbers: int, seed: int, revision: int) -> int:
    """How many records differ between revision 0 and ``revision`` (ceil(numbers/100) or 0).

    >>> changed_count(1000, 1, 1), changed_count(40, 7, 3), changed_count(40, 7, 0)
    (10, 1, 0)
    """
    return len(changed_indices(numbers, seed, revision))


def mix64(x: int) -> int:
    """SplitMix64's finalizer: a fast, well-spread 64-bit hash of an integer."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _permutation(salt: int) -> tuple[int, int]:
    """(a, b) with gcd(a, SUBSCRIBER_SPAN) == 1, so i -> (a*i + b) % span is one-to-one."""
    h = mix64(salt)
    a = (h % (SUBSCRIBER_SPAN // 2)) * 2 + 1
    while a % 5 == 0:
        a += 2
    return a, mix64(h) % SUBSCRIBER_SPAN


@dataclass(frozen=True)
class Listing:
    """A listing body: ``prefix``, the records separated by commas, ``suffix``."""

    count: int  # generated records
    prefix: str
    suffix: str
    render: Callable[[int, int], list[str]]
    extra: tuple[str, ...] = field(default=())  # appended after the generated records

    @property
    def total(self) -> int:
        """Records in the body, extras included."""
        return self.count + len(self.extra)

    def batch(self, start: int, stop: int) -> list[str]:
        """The JSON text of records ``start`` to ``stop - 1``."""
        out = self.render(start, min(stop, self.count)) if start < self.count else []
        if stop > self.count:
            out.extend(self.extra[max(start - self.count, 0) : stop - self.count])
        return out


def _cost(cents: int, currency: str) -> str:
    return f',"cost":{{"amount":{cents // 100}.{cents % 100:02d},"currencyId":"{currency}"}}}}'


@dataclass(frozen=True)
class _SinchTables:
    heads: tuple[str, ...]
    mids: tuple[str, ...]
    costs: tuple[tuple[str, ...], ...]
    groups: tuple[str, ...]
    caps: tuple[str, ...]
    apps: tuple[str, ...]
    expires: tuple[str, ...]


_CAPABILITIES = (
    ["voice"], ["voice"], ["voice"], ["sms"], ["voice", "sms"], ["voice", "sms"],
    ["voice", "sms"], ["sms", "voice"], ["SMS", "voice", "sms"], ["Voice"], ["VOICE", "SMS"],
    ["voice", "voice"], ["sms"], ["voice", "sms"], ["voice"], ["Sms", "Voice"],
)  # fmt: skip


@lru_cache(maxsize=16)
def _sinch_tables(seed: int, anchor: date) -> _SinchTables:
    rnd = random.Random(f"sinch-{seed}")
    keys = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(5)]
    expires: list[str] = []
    for k in range(1024):
        if k % 20 < 3:  # 15%: no expiry
            expires.append("")
            continue
        days = 1 + rnd.randrange(29) if k % 20 < 5 else 31 + rnd.randrange(700)  # 10% soon
        when = datetime.combine(anchor + timedelta(days=days), datetime.min.time())
        expires.append(f',"expires":"{when:%Y-%m-%d}T23:59:59+00:00"')
    rnd.shuffle(expires)
    t = SINCH_PICK
    return _SinchTables(
        heads=tuple(f'{{"number":{x.cc}{x.prefix}' for x in t),
        mids=tuple(
            f',"countryId":"{x.region}","city":"{x.city}","country":"{x.region}",'
            f'"areaCode":"{x.area_code}"'
            for x in t
        ),
        costs=tuple(tuple(_cost(c, x.currency) for c in x.cents) for x in t),
        groups=tuple(f',"groupId":{1 + (k * 7) % 40}' for k in range(64)),
        caps=tuple(
            ',"capabilities":' + json.dumps(c, separators=(",", ":")) for c in _CAPABILITIES
        ),
        apps=tuple(f',"applicationKey":"{keys[k]}"' if k < 5 else "" for k in range(16)),
        expires=tuple(expires),
    )


def sinch_listing(numbers: int, seed: int, revision: int, anchor: date) -> Listing:
    """The Sinch ``GET /v1/organisations/id/{id}/numbers`` body: a JSON array of Numbers."""
    _check(numbers)
    tb = _sinch_tables(seed, anchor)
    salt = (_SINCH_SALT + seed * 0x1_0000_0001) & _MASK
    a, b = _permutation(salt)
    heads, mids, costs, groups, caps, apps, expires = (
        tb.heads, tb.mids, tb.costs, tb.groups, tb.caps, tb.apps, tb.expires,
    )  # fmt: skip

    def render(start: int, stop: int) -> list[str]:
        out: list[str] = []
        append = out.append
        for i in range(start, stop):
            x = (salt + i) & _MASK  # mix64, inlined for speed
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
            h = x ^ (x >> 31)
            p = h & 255
            cost = costs[p][(h >> 8) & 7]
            if revision and i % CHANGE_STRIDE == 0:
                tpl = SINCH_PICK[p]
                cost = _cost(tpl.cents[(h >> 8) & 7] + revision, tpl.currency)
            append(
                f"{heads[p]}{(a * i + b) % SUBSCRIBER_SPAN + SUBSCRIBER_BASE}"
                f"{groups[(h >> 11) & 63]}{caps[(h >> 17) & 15]}{apps[(h >> 21) & 15]}"
                f"{mids[p]}{expires[(h >> 25) & 1023]}{cost}"
            )
        return out

    return Listing(numbers, "[", "]", render)


@dataclass(frozen=True)
class _PingramTables:
    labels: tuple[str, ...]
    label_texts: tuple[str, ...]
    created: tuple[str, ...]
    billing: tuple[str, ...]
    shared: str
    displays: tuple[tuple[Callable[[str], str], ...], ...]  # [pick slot][style]


# 32 labels; the 6 empty ones mean "no label".
_LABELS = (
    "Support line", "Sales", "Marketing", "Ops on-call", "Billing", "Main office",
    "SMS alerts", "2FA sender", 'Front desk "main"', "Café Zürich", "Recruiting",
    "Customer success", "Night shift", "EU helpdesk", "Notifications", "Warehouse",
    "Field team", "Partner hotline", "Status updates", "Returns", "Dispatch",
    "Onboarding", "Legal", "Test number", "Reservations", "Fleet",
    "", "", "", "", "", "",
)  # fmt: skip


@lru_cache(maxsize=16)
def _pingram_tables(seed: int, anchor: date) -> _PingramTables:
    rnd = random.Random(f"pingram-{seed}")
    texts = [f"{text} {rnd.randrange(1, 100)}" if text else "" for text in _LABELS]
    start = datetime(2019, 1, 1, tzinfo=UTC)
    created = []
    for _ in range(4096):
        when = start + timedelta(seconds=rnd.randrange(6 * 365 * 86400))
        created.append(f"{when:%Y-%m-%dT%H:%M:%S}.{rnd.randrange(1000):03d}Z")
    billing = []
    for k in range(64):
        if k % 16 == 0:  # 1/16 released
            when = datetime.combine(anchor, datetime.min.time()) - timedelta(
                days=1 + rnd.randrange(90), seconds=rnd.randrange(86400)
            )
            billing.append(f'"billingStatus":"released","releasedAt":"{when:%Y-%m-%dT%H:%M:%S}Z"')
        else:
            due = anchor + timedelta(days=1 + rnd.randrange(31))
            billing.append(f'"billingStatus":"active","nextBillingDate":"{due:%Y-%m-%d}"')
    rnd.shuffle(billing)
    return _PingramTables(
        labels=tuple(f',"label":{json.dumps(t, ensure_ascii=False)}' if t else "" for t in texts),
        label_texts=tuple(texts),
        created=tuple(created),
        billing=tuple(billing),
        shared=f"+1888{SUBSCRIBER_BASE + mix64(seed) % SUBSCRIBER_SPAN}",
        displays=_displays(),
    )


@lru_cache(maxsize=1)
def _displays() -> tuple[tuple[Callable[[str], str], ...], ...]:
    return tuple(tuple(displayer(t, style) for style in range(3)) for t in PINGRAM_PICK)


_PINGRAM_CAPS = (
    '{"sms":true,"mms":false,"voice":true}',
    '{"sms":true,"mms":true,"voice":true}',
    '{"sms":true,"mms":false,"voice":false}',
    '{"sms":false,"mms":false,"voice":true}',
)


def _pingram_label(texts: tuple[str, ...], k: int, revision: int) -> str:
    text = f"{texts[k]} (renamed r{revision})" if texts[k] else f"Renamed in r{revision}"
    return f',"label":{json.dumps(text, ensure_ascii=False)}'


def pingram_listing(numbers: int, seed: int, revision: int, anchor: date) -> Listing:
    """The Pingram ``GET /numbers/list`` body: ``{"numbers": [...], "sharedNumber": ...}``."""
    _check(numbers)
    tb = _pingram_tables(seed, anchor)
    salt = (_PINGRAM_SALT + seed * 0x1_0000_0001) & _MASK
    a, b = _permutation(salt)
    labels, texts, created, billing = tb.labels, tb.label_texts, tb.created, tb.billing
    pick, displays = PINGRAM_PICK, tb.displays

    def render(start: int, stop: int) -> list[str]:
        out: list[str] = []
        append = out.append
        for i in range(start, stop):
            x = (salt + i) & _MASK
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
            h = x ^ (x >> 31)
            t: Template = pick[h & 255]
            sub = str((a * i + b) % SUBSCRIBER_SPAN + SUBSCRIBER_BASE)
            k = (h >> 8) & 31
            label = _pingram_label(texts, k, revision) if revision and i % 100 == 0 else labels[k]
            when = created[(h >> 13) & 4095]
            if h >> 63:
                append(
                    f'{{"phoneNumber":"+{t.cc}{t.prefix}{sub}"{label},"createdAt":"{when}",'
                    f'"countryCode":"{t.region}","numberType":"{t.kind}",'
                    f'{billing[(h >> 25) & 63]},"monthlyPrice":{t.pingram_prices[(h >> 31) & 3]},'
                    f'"capabilities":{_PINGRAM_CAPS[(h >> 33) & 3]}}}'
                )
            else:
                number = displays[h & 255][(h >> 35) % 3](sub)
                append(f'{{"phoneNumber":"{number}"{label},"createdAt":"{when}"}}')
        return out

    return Listing(numbers, '{"numbers":[', f'],"sharedNumber":"{tb.shared}"}}', render)


def _check(numbers: int) -> None:
    if not 0 <= numbers <= MAX_NUMBERS:
        raise ValueError(f"numbers must be between 0 and {MAX_NUMBERS}, not {numbers}")
