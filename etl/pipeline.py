"""The one place the pipeline is wired: lock → extract → archive → normalize → load → record.

`sync` is used by the CLI, the daemon and the demo; `etl.backfill` loads
archived responses through the same `load_source_listing`, so a backfilled
archive is loaded exactly as a live listing would have been.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from sqlalchemy import Engine

from etl.archive import tee_to_archive
from etl.db.load import LoadResult, fetch_active_digests, forget_digests, load_listing
from etl.db.lock import sync_lock
from etl.db.runs import (
    abort_stale_runs,
    finish_run,
    record_run_source,
    start_run,
    upsert_provider_account,
)
from etl.errors import ConfigError, DigestMismatch, NumbersEtlError, SourceError
from etl.extract._json import Listing
from etl.http import EtlSession, build_session
from etl.logs import log_context
from etl.settings import Settings
from etl.sources import SOURCES, Extractor, SourceSpec
from etl.transform import LoadItem, NormalizedItem, NumberRow
from etl.transform.digest import DigestSet

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


class SourceClients:
    """The HTTP session and one extractor per source, created on first use.

    A daemon keeps one for its lifetime, so that a Sinch log-in and the instance
    it created are reused across runs until they near expiry.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: EtlSession | None = None
        self._extractors: dict[str, Extractor] = {}

    def extractor(self, spec: SourceSpec) -> Extractor:
        """The extractor of `spec`, built once."""
        if spec.name not in self._extractors:
            if self._session is None:
                self._session = build_session(self._settings)
            self._extractors[spec.name] = spec.extractor(self._settings, self._session)
        return self._extractors[spec.name]


@dataclass(frozen=True)
class SourceOutcome:
    """How one (source, account) fared in a run."""

    source: str
    account_id: str
    status: str  # "succeeded" | "failed"
    result: LoadResult | None
    error: str | None
    duration_ms: int


@dataclass
class SyncResult:
    """One run: its id, status and per-source outcomes."""

    run_id: int
    trigger: str
    run_at: datetime
    status: str = "running"
    outcomes: list[SourceOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every source succeeded, 1 otherwise (SPEC §2)."""
        return 0 if self.status == "succeeded" else 1


def run_status(outcomes: Sequence[SourceOutcome]) -> str:
    """`succeeded` when all succeeded, `failed` when none did, else `partial`."""
    failed = sum(o.status == "failed" for o in outcomes)
    if not failed:
        return "succeeded"
    return "failed" if failed == len(outcomes) else "partial"


def selected_sources(settings: Settings, names: Sequence[str] | None) -> list[SourceSpec]:
    """The configured sources, limited to `names` when given; ConfigError when none."""
    enabled = settings.enabled_sources
    if names:
        unknown = [n for n in names if n not in SOURCES]
        if unknown:
            raise ConfigError(f"unknown source {unknown[0]!r} (known: {', '.join(SOURCES)})")
        missing = [n for n in names if n not in enabled]
        if missing:
            raise ConfigError(f"source {missing[0]!r} is not configured (set its credentials)")
        enabled = [n for n in enabled if n in names]
    if not enabled:
        raise ConfigError(
            "no source configured: set SINCH_INSTANCE_ID and SINCH_INSTANCE_SECRET "
            "(or SINCH_EMAIL and SINCH_PASSWORD), or PINGRAM_API_KEY"
        )
    return [SOURCES[name] for name in enabled]


def sync(
    engine: Engine,
    settings: Settings,
    *,
    trigger: str = "manual",
    sources: Sequence[str] | None = None,
    allow_mass_removal: bool = False,
    wait_for_lock: bool = False,
    clients: SourceClients | None = None,
    clock: Clock = utc_now,
) -> SyncResult:
    """Sync every configured source (or `sources`) once, under the advisory lock.

    `clients` keeps the HTTP session and extractors between calls (the daemon
    passes one, so a Sinch log-in and its instance live until they expire).
    """
    specs = selected_sources(settings, sources)
    clients = clients or SourceClients(settings)
    with sync_lock(engine, wait=wait_for_lock):
        abort_stale_runs(engine, now=clock())
        run_at = clock()
        result = SyncResult(
            run_id=start_run(engine, trigger=trigger, started_at=run_at),
            trigger=trigger,
            run_at=run_at,
        )
        with log_context(run_id=result.run_id):
            try:
                for spec in specs:
                    result.outcomes.extend(
                        _sync_source(
                            engine,
                            settings,
                            spec,
                            clients,
                            result.run_id,
                            run_at,
                            allow_mass_removal,
                        )
                    )
            except BaseException as exc:  # KeyboardInterrupt, SystemExit from SIGTERM…
                finish_run(
                    engine,
                    result.run_id,
                    status="aborted",
                    finished_at=clock(),
                    error=f"interrupted: {type(exc).__name__}",
                )
                raise
            finish_result(engine, result, clock)
            log.info("run %s %s", result.run_id, result.status)
    return result


def _sync_source(
    engine: Engine,
    settings: Settings,
    spec: SourceSpec,
    clients: SourceClients,
    run_id: int,
    run_at: datetime,
    allow_mass_removal: bool,
) -> Iterator[SourceOutcome]:
    """Outcomes of every account of one source; a failure is recorded, never raised."""
    started = time.monotonic()
    with log_context(source=spec.name):
        try:
            extractor = clients.extractor(spec)
            accounts = extractor.accounts()
        except Exception as exc:  # one source never fails the others
            account = settings.sinch_organisation_id if spec.name == "sinch" else None
            yield record_outcome(
                engine, run_id, spec.name, account or "unknown", None, exc, started
            )
            return
    for account_id in accounts:
        started = time.monotonic()
        with log_context(source=spec.name, account_id=account_id):
            try:
                with extractor.open_listing(account_id) as body:
                    result = load_source_listing(
                        engine,
                        settings,
                        spec,
                        account_id,
                        body,
                        run_id=run_id,
                        run_at=run_at,
                        allow_mass_removal=allow_mass_removal,
                        archive=True,
                    )
            except Exception as exc:  # one source never fails the others
                yield record_outcome(engine, run_id, spec.name, account_id, None, exc, started)
            else:
                yield record_outcome(engine, run_id, spec.name, account_id, result, None, started)


def load_source_listing(
    engine: Engine,
    settings: Settings,
    spec: SourceSpec,
    account_id: str,
    body: BinaryIO,
    *,
    run_id: int,
    run_at: datetime,
    allow_mass_removal: bool,
    archive: bool,
) -> LoadResult:
    """Parse, normalize and load one listing body in one transaction."""
    archive_dir = settings.archive_dir if archive else None
    with tee_to_archive(body, archive_dir, spec.name, account_id, run_at) as stream:
        listing = spec.parse_listing(stream, account_id=account_id)
        with _forgetting_digests_on_mismatch(engine, spec.name, account_id), engine.begin() as conn:
            known = fetch_active_digests(
                conn, source=spec.name, account_id=account_id, half=run_id % 2
            )
            items = normalize_new_elements(spec, listing, known, account_id=account_id)
            result = load_listing(
                conn,
                items,
                run_id=run_id,
                source=spec.name,
                account_id=account_id,
                run_at=run_at,
                max_removal_fraction=settings.max_removal_fraction,
                allow_mass_removal=allow_mass_removal,
                bulk_load_min_rows=settings.bulk_load_min_rows,
            )
            upsert_provider_account(
                conn,
                source=spec.name,
                account_id=account_id,
                shared_number=_text_or_none(listing.extras.get("shared_number")),
                run_id=run_id,
                success_at=run_at,
            )
    return result


@contextmanager
def _forgetting_digests_on_mismatch(engine: Engine, source: str, account_id: str) -> Iterator[None]:
    """On DigestMismatch (raised, the load rolled back), drop the account's digests.

    The next sync then normalizes every element and stores fresh digests.
    """
    try:
        yield
    except DigestMismatch as exc:
        with engine.begin() as conn:
            forget_digests(conn, source=source, account_id=account_id)
        raise DigestMismatch(
            f"{exc.args[0]}; the account's digests were dropped, so the next sync "
            "normalizes every element",
            source=source,
            account_id=account_id,
        ) from exc


def normalize_new_elements(
    spec: SourceSpec, listing: Listing, known: DigestSet, *, account_id: str
) -> Iterator[LoadItem]:
    """Each element normalized, or `Unchanged` when its digest is in `known` (not even decoded)."""
    normalize = spec.normalize
    decode = listing.decode

    def normalize_new(element: bytes, digest: bytes) -> NormalizedItem:
        item = normalize(decode(element), account_id=account_id)
        if type(item) is NumberRow:
            item.raw_digest = digest
        return item

    return known.sort_out(listing.elements, spec.digest_seed, normalize_new)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def record_outcome(
    engine: Engine,
    run_id: int,
    source: str,
    account_id: str,
    result: LoadResult | None,
    error: BaseException | None,
    started: float,
) -> SourceOutcome:
    """Write the (source, account) outcome and its canonical summary log line."""
    duration_ms = int((time.monotonic() - started) * 1000)
    message = None if error is None else _describe(error)
    outcome = SourceOutcome(
        source, account_id, "failed" if error else "succeeded", result, message, duration_ms
    )
    record_run_source(
        engine,
        run_id,
        source=source,
        account_id=account_id,
        status=outcome.status,
        result=result,
        error=message,
        duration_ms=duration_ms,
    )
    counts = vars(result) if result is not None else {}
    extra = {
        "source": source,
        "account_id": account_id,
        "status": outcome.status,
        "duration_ms": duration_ms,
        **counts,
    }
    if error is None:
        log.info("summary %s", " ".join(f"{k}={v}" for k, v in counts.items()), extra=extra)
    elif isinstance(error, NumbersEtlError):
        log.error("summary failed: %s", message, extra=extra)
    else:
        log.error("summary failed: %s", message, extra=extra, exc_info=error)
    return outcome


def _describe(error: BaseException) -> str:
    if isinstance(error, SourceError):
        return str(error.args[0]) if error.args else type(error).__name__
    if isinstance(error, NumbersEtlError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"


def finish_result(engine: Engine, result: SyncResult, clock: Clock) -> None:
    """Set the run's status from its outcomes and record it finished."""
    result.status = run_status(result.outcomes)
    finish_run(
        engine,
        result.run_id,
        status=result.status,
        finished_at=clock(),
        error=_run_error(result.outcomes),
    )


def _run_error(outcomes: Sequence[SourceOutcome]) -> str | None:
    failed = [f"{o.source}/{o.account_id}: {o.error}" for o in outcomes if o.error]
    return "; ".join(failed) if failed else None


def stale_sources(
    settings: Settings,
    freshness: Sequence[dict[str, object]],
    max_age_s: float,
    *,
    clock: Clock = utc_now,
) -> list[str]:
    """Configured sources never loaded, or with an account whose last success is too old.

    Accounts that never succeeded (a failed organisation look-up is recorded as
    account "unknown") are not judged on their own: a source counts as fresh
    through the accounts it has loaded.
    """
    now = clock()
    stale: list[str] = []
    for source in settings.enabled_sources:
        loaded = [
            (row.get("account_id"), last)
            for row in freshness
            if row.get("source") == source
            and isinstance(last := row.get("last_success_at"), datetime)
        ]
        if not loaded:
            stale.append(f"{source}: no successful sync recorded")
        stale.extend(
            f"{source}/{account}: last success {last.isoformat()} is older than {max_age_s:g}s"
            for account, last in loaded
            if (now - last).total_seconds() > max_age_s
        )
    return stale
