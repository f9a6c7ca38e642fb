"""Number templates of the simulator's dataset: where its numbers live and what they cost.

A number is ``+{cc}{prefix}{subscriber}`` where the subscriber part is always seven
digits from 2000000 to 9999999. Within one calling code the prefixes are prefix-free,
so distinct subscriber parts give distinct numbers whatever template they fall in.
Every template yields *possible* numbers per libphonenumber (most also valid).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

SUBSCRIBER_BASE = 2_000_000
SUBSCRIBER_SPAN = 8_000_000  # subscriber parts 2000000..9999999, so at most 8M numbers a listing


@dataclass(frozen=True)
class Template:
    """One numbering block: a country, a city (or mobile/toll-free range) and its prices."""

    region: str  # ISO 3166-1 alpha-2
    cc: str  # country calling code
    prefix: str  # national digits before the 7-digit subscriber part
    city: str  # upper case like Sinch's, "" for mobile and toll-free ranges
    area_code: str
    kind: str  # Pingram numberType: local | mobile | toll_free
    currency: str  # Sinch billing currency
    groups: tuple[int, ...]  # how the national number is grouped for display
    cents: tuple[int, ...]  # Sinch monthly prices, in cents (8 entries)
    pingram_prices: tuple[str, ...]  # Pingram monthlyPrice as a JS client prints it (4 entries)
    weight_sinch: int  # share of the 256-slot pick table
    weight_pingram: int


def _nanp(region: str, area: str, city: str, ws: int, wp: int, kind: str = "local") -> Template:
    cents = (100, 100, 125, 125, 150, 10, 0, 200) if kind == "local" else (200, 250, 300, 500) * 2
    prices = ("1.15", "1", "1.5", "0.99") if kind == "local" else ("2.15", "2", "3.5", "2.15")
    return Template(region, "1", area, city, area, kind, "USD", (3, 3, 4), cents, prices, ws, wp)


_EU_CENTS = (90, 100, 110, 120, 150, 180, 75, 100)
_GB_CENTS = (100, 115, 125, 150, 200, 250, 100, 125)
_AU_CENTS = (300, 325, 350, 400, 300, 350, 425, 500)

# fmt: off
TEMPLATES: tuple[Template, ...] = (
    _nanp("US", "415", "SAN FRANCISCO", 14, 20),
    _nanp("US", "212", "NEW YORK", 10, 14),
    _nanp("US", "646", "NEW YORK", 6, 8),
    _nanp("US", "312", "CHICAGO", 8, 10),
    _nanp("US", "213", "LOS ANGELES", 8, 10),
    _nanp("US", "617", "BOSTON", 6, 8),
    _nanp("US", "206", "SEATTLE", 6, 8),
    _nanp("US", "512", "AUSTIN", 5, 6),
    _nanp("US", "305", "MIAMI", 5, 6),
    _nanp("US", "303", "DENVER", 4, 5),
    _nanp("US", "404", "ATLANTA", 4, 5),
    _nanp("US", "702", "LAS VEGAS", 3, 4),
    _nanp("US", "800", "", 4, 12, "toll_free"),
    _nanp("US", "888", "", 3, 10, "toll_free"),
    _nanp("US", "833", "", 2, 6, "toll_free"),
    _nanp("CA", "416", "TORONTO", 8, 10),
    _nanp("CA", "604", "VANCOUVER", 6, 8),
    _nanp("CA", "514", "MONTREAL", 5, 6),
    _nanp("CA", "403", "CALGARY", 3, 4),
    _nanp("CA", "613", "OTTAWA", 3, 4),
    Template("GB", "44", "207", "LONDON", "20", "local", "USD", (2, 4, 4), _GB_CENTS,
             ("1.25", "1.5", "1.15", "2"), 10, 8),
    Template("GB", "44", "161", "MANCHESTER", "161", "local", "USD", (3, 3, 4), _GB_CENTS,
             ("1.25", "1.5", "1.15", "2"), 5, 4),
    Template("GB", "44", "121", "BIRMINGHAM", "121", "local", "USD", (3, 3, 4), _GB_CENTS,
             ("1.25", "1.5", "1.15", "2"), 4, 3),
    Template("GB", "44", "795", "", "7", "mobile", "USD", (4, 6), _GB_CENTS,
             ("1.5", "2", "2.25", "1.75"), 12, 14),
    Template("DE", "49", "303", "BERLIN", "30", "local", "EUR", (2, 8), _EU_CENTS,
             ("1.1", "1.25", "1.5", "2"), 9, 5),
    Template("DE", "49", "891", "MUNICH", "89", "local", "EUR", (2, 8), _EU_CENTS,
             ("1.1", "1.25", "1.5", "2"), 6, 3),
    Template("DE", "49", "404", "HAMBURG", "40", "local", "EUR", (2, 8), _EU_CENTS,
             ("1.1", "1.25", "1.5", "2"), 4, 2),
    Template("SE", "46", "8", "STOCKHOLM", "8", "local", "EUR", (1, 3, 2, 2), _EU_CENTS,
             ("1.2", "1.5", "1.8", "2"), 7, 3),
    Template("SE", "46", "31", "GOTHENBURG", "31", "local", "EUR", (2, 3, 2, 2), _EU_CENTS,
             ("1.2", "1.5", "1.8", "2"), 4, 2),
    Template("SE", "46", "70", "", "70", "mobile", "EUR", (2, 3, 2, 2), _EU_CENTS,
             ("1.5", "2", "2.5", "3"), 4, 2),
    Template("FR", "33", "14", "PARIS", "1", "local", "EUR", (1, 2, 2, 2, 2), _EU_CENTS,
             ("1.1", "1.3", "1.5", "2"), 8, 4),
    Template("FR", "33", "47", "LYON", "4", "local", "EUR", (1, 2, 2, 2, 2), _EU_CENTS,
             ("1.1", "1.3", "1.5", "2"), 4, 2),
    Template("FR", "33", "61", "", "6", "mobile", "EUR", (1, 2, 2, 2, 2), _EU_CENTS,
             ("1.8", "2", "2.5", "3"), 5, 3),
    Template("AU", "61", "29", "SYDNEY", "2", "local", "USD", (1, 4, 4), _AU_CENTS,
             ("3.25", "3.5", "4", "4.5"), 7, 6),
    Template("AU", "61", "39", "MELBOURNE", "3", "local", "USD", (1, 4, 4), _AU_CENTS,
             ("3.25", "3.5", "4", "4.5"), 5, 4),
    Template("AU", "61", "41", "", "4", "mobile", "USD", (3, 3, 3), _AU_CENTS,
             ("4", "5", "6.5", "4.25"), 5, 6),
    Template("NL", "31", "20", "AMSTERDAM", "20", "local", "EUR", (2, 3, 4), _EU_CENTS,
             ("1", "1.2", "1.5", "2"), 5, 2),
    Template("NL", "31", "10", "ROTTERDAM", "10", "local", "EUR", (2, 3, 4), _EU_CENTS,
             ("1", "1.2", "1.5", "2"), 3, 1),
)
# fmt: on


def pick_table(weights: list[int]) -> tuple[Template, ...]:
    """A 256-entry table in which each template fills about weight/sum(weights) of the slots."""
    total = sum(weights)
    table: list[Template] = []
    cumulative = 0
    for template, weight in zip(TEMPLATES, weights, strict=True):
        cumulative += weight
        table.extend([template] * (cumulative * 256 // total - len(table)))
    return tuple(table)


SINCH_PICK = pick_table([t.weight_sinch for t in TEMPLATES])
PINGRAM_PICK = pick_table([t.weight_pingram for t in TEMPLATES])


def display(template: Template, national: str, style: int) -> str:
    """The number as people write it: ``+1 (415) 555-0100``, ``+44 7950 123456``...

    >>> display(TEMPLATES[0], "4155550100", 0)
    '+1 (415) 555-0100'
    >>> display(TEMPLATES[0], "4155550100", 2)
    '+1.415.555.0100'
    >>> display(TEMPLATES[23], "7950123456", 1)
    '+44-7950-123456'
    """
    parts = []
    at = 0
    for size in template.groups:
        parts.append(national[at : at + size])
        at += size
    if template.cc == "1":
        if style == 0:
            return f"+1 ({parts[0]}) {parts[1]}-{parts[2]}"
        if style == 1:
            return f"+1-{parts[0]}-{parts[1]}-{parts[2]}"
        return f"+1.{'.'.join(parts)}"
    sep = (" ", "-", ".")[style % 3]
    return f"+{template.cc}{sep}{sep.join(parts)}"


def displayer(template: Template, style: int) -> Callable[[str], str]:
    """A fast `display` for one template and style, given the 7-digit subscriber part.

    >>> displayer(TEMPLATES[0], 0)("5550100")
    '+1 (415) 555-0100'
    """
    pieces = re.split(r"([A-G]+)", display(template, template.prefix + "ABCDEFG", style))
    lits, runs = pieces[0::2], pieces[1::2]
    cuts = []
    at = 0
    for run in runs:
        cuts.append((at, at + len(run)))
        at += len(run)
    if len(runs) == 1:
        (l0, l1), ((a, b),) = lits, cuts
        return lambda s: f"{l0}{s[a:b]}{l1}"
    if len(runs) == 2:
        (l0, l1, l2), ((a, b), (c, d)) = lits, cuts
        return lambda s: f"{l0}{s[a:b]}{l1}{s[c:d]}{l2}"
    tail = lits[-1]
    pairs = tuple(zip(lits, cuts, strict=False))
    return lambda s: "".join([lit + s[a:b] for lit, (a, b) in pairs]) + tail
