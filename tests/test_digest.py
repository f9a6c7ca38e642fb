"""Skipping unchanged elements: digests of the exact element text (etl.transform.digest).

An element whose text an active row was normalized from is neither decoded nor
normalized again; the loader confirms its digest and keeps the row as it is.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from etl.db.load import LoadResult, fetch_active_digests, load_listing
from etl.db.runs import start_run
from etl.errors import DigestMismatch
from etl.extract.sinch import parse_sinch_listing
from etl.pipeline import normalize_new_elements, sync
from etl.sources import SOURCES, SourceSpec
from etl.transform import LoadItem, NumberRow, Unchanged
from etl.transform.digest import EMPTY, DigestSet, digest_seed, record_digest

T1 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 1, 11, 0, tzinfo=UTC)
T3 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "8888123"
SEED = SOURCES["sinch"].digest_seed


def element(number: int, amount: str = "1.25", city: str = "X") -> bytes:
    """One Sinch listing element's exact text."""
    return (
        f'{{"number":{number},"country":"US","city":"{city}",'
        f'"cost":{{"amount":{amount},"currencyId":"USD"}}}}'
    ).encode()


def listing_body(*elements: bytes) -> bytes:
    return b"[" + b",".join(elements) + b"]"


class CountingSpec:
    """The Sinch SourceSpec with its normalizer counting calls (the real one runs)."""

    def __init__(self, version: int = 1) -> None:
        self.calls = 0
        real = SOURCES["sinch"]

        def normalize(record: Any, **kw: Any) -> Any:
            self.calls += 1
            return real.normalize(record, **kw)

        self.spec: SourceSpec = dataclasses.replace(
            real, normalize=normalize, digest_seed=digest_seed("sinch", version)
        )


Loader = Callable[..., LoadResult]


@pytest.fixture
def sync_body(engine: Engine) -> Callable[..., LoadResult]:
    """Load a Sinch body as the pipeline does: digests, normalize new elements, load."""

    def run(body: bytes, run_at: datetime, spec: SourceSpec | None = None) -> LoadResult:
        spec = spec or SOURCES["sinch"]
        run_id = start_run(engine, trigger="manual", started_at=run_at)
        with engine.begin() as conn:
            known = fetch_active_digests(conn, source="sinch", account_id=ACCOUNT, half=run_id % 2)
            listing = parse_sinch_listing(io.BytesIO(body), account_id=ACCOUNT)
            items = normalize_new_elements(spec, listing, known, account_id=ACCOUNT)
            return load_listing(
                conn,
                items,
                run_id=run_id,
                source="sinch",
                account_id=ACCOUNT,
                run_at=run_at,
                max_removal_fraction=Decimal("0.5"),
            )

    return run


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every phone_numbers row's number, a few attributes, timestamps and xmin."""
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT e164, cost_amount, city, removed_at, updated_at,"
                    " xmin::text AS xmin FROM phone_numbers ORDER BY e164"
                )
            ).mappings()
        ]


def digests(engine: Engine) -> dict[str, bytes]:
    """e164 → stored digest (one row per number, or the test fails)."""
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT e164, raw_digest FROM phone_number_digests ORDER BY e164")
        ).all()
    by_number = {e164: bytes(digest) for e164, digest in found}
    assert len(by_number) == len(found)
    return by_number


def test_digest_depends_on_the_text_and_the_normalizer_version() -> None:
    """Same text, same version: same digest; a byte or the version changes it."""
    assert record_digest(element(14150005550), SEED) == record_digest(element(14150005550), SEED)
    assert record_digest(element(14150005550), SEED) != record_digest(element(14150005551), SEED)
    assert record_digest(element(14150005550), SEED) != record_digest(element(14150005550), 2)
    assert len(record_digest(b"{}", 1)) == 16


@pytest.mark.parametrize("half", [0, 1])
def test_digest_set_membership_on_either_half(half: int) -> None:
    """Members are found, others are not, whichever half the set keeps."""
    digests = [record_digest(str(i).encode(), 1) for i in range(1000)]
    known = DigestSet.from_digests(digests[:500], half=half)
    assert all(d in known for d in digests[:500])
    assert not any(d in known for d in digests[500:])
    assert len(known) == 500
    assert digests[0] not in EMPTY


def test_known_elements_are_not_normalized() -> None:
    """normalize_new_elements: a known digest gives Unchanged; a new one a row carrying it."""
    counting = CountingSpec()
    old, new = element(14150005550), element(14150005551)
    known = DigestSet.from_digests([record_digest(old, SEED)], half=0)
    listing = parse_sinch_listing(io.BytesIO(listing_body(old, new)), account_id=ACCOUNT)

    items = list(normalize_new_elements(counting.spec, listing, known, account_id=ACCOUNT))

    assert counting.calls == 1
    assert items[0] == Unchanged(record_digest(old, SEED))
    assert isinstance(items[1], NumberRow)
    assert (items[1].e164, items[1].raw_digest) == ("+14150005551", record_digest(new, SEED))


def test_second_load_of_the_same_body_normalizes_nothing_and_writes_nothing(
    engine: Engine, sync_body: Loader
) -> None:
    """Same listing again: no element normalized, every row's xmin and updated_at unchanged."""
    body = listing_body(*(element(14150005550 + i) for i in range(50)))
    sync_body(body, T1)
    before = rows(engine)
    assert len(digests(engine)) == 50

    counting = CountingSpec()
    result = sync_body(body, T2, counting.spec)

    assert counting.calls == 0
    assert result == LoadResult(
        fetched=50, inserted=0, updated=0, unchanged=50, removed=0, rejected=0
    )
    assert rows(engine) == before


def test_only_changed_elements_are_normalized_and_absent_ones_removed(
    engine: Engine, sync_body: Loader
) -> None:
    """One changed element (normalized, updated), one gone (removed), the rest skipped."""
    sync_body(listing_body(*(element(14150005550 + i) for i in range(10))), T1)
    counting = CountingSpec()
    changed = [element(14150005550 + i) for i in range(9)]
    changed[3] = element(14150005553, amount="2.50")

    result = sync_body(listing_body(*changed), T2, counting.spec)

    assert counting.calls == 1
    assert result == LoadResult(
        fetched=9, inserted=0, updated=1, unchanged=8, removed=1, rejected=0
    )
    by_number = {r["e164"]: r for r in rows(engine)}
    assert by_number["+14150005553"]["cost_amount"] == Decimal("2.50")
    assert by_number["+14150005559"]["removed_at"] == T2
    assert digests(engine)["+14150005553"] == record_digest(changed[3], SEED)
    assert "+14150005559" not in digests(engine)


def test_a_new_normalizer_version_normalizes_every_element_once(
    engine: Engine, sync_body: Loader
) -> None:
    """A new seed normalizes every element again, once: digests are renewed, rows not written."""
    body = listing_body(*(element(14150005550 + i) for i in range(5)))
    sync_body(body, T1)
    before = rows(engine)
    bumped, again = CountingSpec(version=2), CountingSpec(version=2)

    first = sync_body(body, T2, bumped.spec)
    second = sync_body(body, T3, again.spec)

    assert (bumped.calls, again.calls) == (5, 0)
    assert first.unchanged == second.unchanged == 5
    assert rows(engine) == before
    assert set(digests(engine).values()) == {
        record_digest(element(14150005550 + i), digest_seed("sinch", 2)) for i in range(5)
    }


def test_a_text_change_without_attribute_change_renews_only_the_digest(
    engine: Engine, sync_body: Loader
) -> None:
    """A new field in the provider's text: normalized once, no row written, then skipped."""
    sync_body(listing_body(element(14150005550)), T1)
    before = rows(engine)
    changed_text = element(14150005550)[:-1] + b',"newField":true}'
    first, second = CountingSpec(), CountingSpec()

    sync_body(listing_body(changed_text), T2, first.spec)
    sync_body(listing_body(changed_text), T3, second.spec)

    assert (first.calls, second.calls) == (1, 0)
    assert rows(engine) == before
    assert digests(engine) == {"+14150005550": record_digest(changed_text, SEED)}


def test_identical_elements_twice_keep_the_first_and_reject_the_copy(
    engine: Engine, sync_body: Loader
) -> None:
    """A repeated unchanged element is a duplicate rejection with its number and raw."""
    first = element(14150005550)
    sync_body(listing_body(first, element(14150005551)), T1)

    result = sync_body(listing_body(first, element(14150005551), first), T2)

    assert (result.unchanged, result.rejected) == (2, 1)
    assert digests(engine)["+14150005550"] == record_digest(first, SEED)  # kept
    with engine.connect() as conn:
        rejected = conn.execute(text("SELECT e164, reason, record FROM rejected_records")).one()
    assert rejected.e164 == "+14150005550"
    assert rejected.reason == "duplicate"
    assert rejected.record["number"] == 14150005550


def test_a_changed_copy_after_an_unchanged_one_is_the_duplicate(
    engine: Engine, sync_body: Loader
) -> None:
    """First copy wins by position, whether it was skipped or normalized."""
    sync_body(listing_body(element(14150005550)), T1)

    result = sync_body(listing_body(element(14150005550), element(14150005550, "9.99")), T2)

    assert (result.updated, result.unchanged, result.rejected) == (0, 1, 1)
    assert rows(engine)[0]["cost_amount"] == Decimal("1.25")
    assert digests(engine) == {"+14150005550": record_digest(element(14150005550), SEED)}


def test_an_unchanged_copy_after_a_changed_one_is_the_duplicate(
    engine: Engine, sync_body: Loader
) -> None:
    """The changed first copy is loaded; the later unchanged copy is rejected."""
    sync_body(listing_body(element(14150005550)), T1)

    result = sync_body(listing_body(element(14150005550, "9.99"), element(14150005550)), T2)

    assert (result.updated, result.unchanged, result.rejected) == (1, 0, 1)
    assert rows(engine)[0]["cost_amount"] == Decimal("9.99")
    assert digests(engine) == {"+14150005550": record_digest(element(14150005550, "9.99"), SEED)}


def test_an_unknown_digest_fails_the_load_and_changes_nothing(engine: Engine) -> None:
    """An Unchanged item matching no active row raises DigestMismatch; nothing is written."""
    run_id = start_run(engine, trigger="manual", started_at=T1)

    def items() -> Iterator[LoadItem]:
        yield Unchanged(record_digest(b"{}", 1))

    with pytest.raises(DigestMismatch, match="1 of 1 elements"), engine.begin() as conn:
        load_listing(
            conn,
            items(),
            run_id=run_id,
            source="sinch",
            account_id=ACCOUNT,
            run_at=T1,
            max_removal_fraction=Decimal("0.5"),
        )
    assert rows(engine) == []


def test_removed_rows_are_not_known(engine: Engine, sync_body: Loader) -> None:
    """A number that was removed is normalized again when it reappears (and restored)."""
    sync_body(listing_body(element(14150005550), element(14150005551)), T1)
    sync_body(listing_body(element(14150005551)), T2)
    with engine.connect() as conn:
        known = fetch_active_digests(conn, source="sinch", account_id=ACCOUNT)
    assert record_digest(element(14150005550), SEED) not in known
    assert record_digest(element(14150005551), SEED) in known

    result = sync_body(listing_body(element(14150005550), element(14150005551)), T3)

    assert (result.updated, result.unchanged) == (1, 1)
    assert all(r["removed_at"] is None for r in rows(engine))


def test_numbers_without_a_digest_get_one_without_a_write(
    engine: Engine, sync_body: Loader
) -> None:
    """Numbers loaded before migration 0002 (no digest): normalized once, not rewritten.

    They are not taken for removed either, though the digests do not name them.
    """
    body = listing_body(element(14150005550), element(14150005551))
    sync_body(body, T1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM phone_number_digests"))
    before = rows(engine)
    first, second = CountingSpec(), CountingSpec()

    result = sync_body(body, T2, first.spec)
    sync_body(body, T3, second.spec)

    assert (first.calls, second.calls) == (2, 0)
    assert (result.unchanged, result.removed) == (2, 0)
    assert rows(engine) == before
    assert len(digests(engine)) == 2


def test_a_number_without_a_digest_is_still_removed_when_absent(
    engine: Engine, sync_body: Loader
) -> None:
    """An undigested active number missing from the listing is marked removed."""
    sync_body(listing_body(element(14150005550), element(14150005551), element(14150005552)), T1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM phone_number_digests WHERE e164 = '+14150005552'"))

    result = sync_body(listing_body(element(14150005550), element(14150005551)), T2)

    assert (result.unchanged, result.removed) == (2, 1)
    assert [r["e164"] for r in rows(engine) if r["removed_at"] == T2] == ["+14150005552"]


def test_digests_out_of_step_with_the_numbers_heal_after_one_failed_sync(
    engine: Engine, make_settings: Callable[..., Any]
) -> None:
    """Numbers deleted behind the loader's back: one sync fails cleanly, the next reloads all."""
    settings = make_settings()
    loaded = sync(engine, settings, sources=["sinch"])
    with engine.begin() as conn:  # outside numbers-etl
        conn.execute(text("DELETE FROM phone_number_versions WHERE source = 'sinch'"))
        conn.execute(text("DELETE FROM phone_numbers WHERE source = 'sinch'"))

    failed = sync(engine, settings, sources=["sinch"])
    healed = sync(engine, settings, sources=["sinch"])

    assert failed.status == "failed"
    assert "digests were dropped" in str(failed.outcomes[0].error)
    assert healed.status == "succeeded"
    assert loaded.outcomes[0].result is not None
    assert healed.outcomes[0].result is not None
    assert healed.outcomes[0].result.inserted == loaded.outcomes[0].result.inserted
