"""The provider registry: one extractor (HTTP) plus one normalizer (pure) per source.

Adding a provider: write `etl/extract/<p>.py` (an `Extractor` and a
`parse_<p>_listing`), `etl/transform/<p>.py` (`normalize_<p>_record`), its
simulator routes, and add one line to `SOURCES`. Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import requests

from etl.extract._json import Listing
from etl.extract.pingram import PingramExtractor, parse_pingram_listing
from etl.extract.sinch import SinchExtractor, parse_sinch_listing
from etl.settings import Settings
from etl.transform import NormalizedItem, pingram, sinch
from etl.transform.digest import digest_seed
from etl.transform.pingram import normalize_pingram_record
from etl.transform.sinch import normalize_sinch_record


class Extractor(Protocol):
    """What the pipeline needs of a provider's HTTP side."""

    def accounts(self) -> list[str]:
        """The account ids to list (Sinch organisations; Pingram's configured account)."""
        ...

    def open_listing(self, account_id: str) -> AbstractContextManager[BinaryIO]:
        """The listing's response body as a byte stream, its HTTP status already checked."""
        ...


@dataclass(frozen=True)
class SourceSpec:
    """Everything the pipeline knows about one provider."""

    name: str
    extractor: Callable[[Settings, requests.Session], Extractor]
    parse_listing: Callable[..., Listing]  # (body: BinaryIO, *, account_id: str) -> Listing
    normalize: Callable[..., NormalizedItem]  # (record, *, account_id: str) -> row | rejection
    digest_seed: int  # of the element digests: digest_seed(name, NORMALIZER_VERSION)


SOURCES: dict[str, SourceSpec] = {
    "sinch": SourceSpec(
        "sinch",
        SinchExtractor,
        parse_sinch_listing,
        normalize_sinch_record,
        digest_seed("sinch", sinch.NORMALIZER_VERSION),
    ),
    "pingram": SourceSpec(
        "pingram",
        PingramExtractor,
        parse_pingram_listing,
        normalize_pingram_record,
        digest_seed("pingram", pingram.NORMALIZER_VERSION),
    ),
}
