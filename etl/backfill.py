"""Backfill (SPEC §6): load archived responses oldest first, each as a run at its archive time.

Each archive goes through the same parser, normalizer and loader as a live
listing (`pipeline.load_source_listing`), so history is rebuilt as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from etl.archive import ArchivedResponse, find_archives, open_archive
from etl.db.load import LoadResult
from etl.db.lock import sync_lock
from etl.db.reports import fetch_last_success
from etl.db.runs import abort_stale_runs, start_run
from etl.logs import log_context
from etl.pipeline import (
    Clock,
    SyncResult,
    finish_result,
    load_source_listing,
    record_outcome,
    utc_now,
)
from etl.settings import Settings
from etl.sources import SOURCES, SourceSpec


@dataclass
class BackfillResult:
    """What a backfill did with each archive, and the archives it could not use."""

    loaded: list[tuple[ArchivedResponse, SyncResult]] = field(default_factory=list)
    skipped: list[ArchivedResponse] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every archive was loaded or already applied, 1 otherwise."""
        return 1 if self.problems else 0


def backfill(
    engine: Engine,
    settings: Settings,
    paths: Sequence[Path],
    *,
    allow_mass_removal: bool = False,
    progress: Callable[[Iterable[ArchivedResponse]], Iterable[ArchivedResponse]] = lambda x: x,
    clock: Clock = utc_now,
) -> BackfillResult:
    """Load archived responses oldest first, each as a run at its archive time.

    An archive not newer than its (source, account)'s last successful load is
    skipped: it is already reflected, and loading it again would rewind the
    current state. So backfilling the same files twice changes nothing.
    """
    archives, problems = find_archives(paths)
    outcome = BackfillResult(problems=[str(p) for p in problems])
    with sync_lock(engine, wait=True):
        abort_stale_runs(engine, now=clock())
        for archived in progress(archives):
            spec = SOURCES.get(archived.source)
            if spec is None:
                outcome.problems.append(f"{archived.path}: unknown source {archived.source!r}")
                continue
            last = fetch_last_success(
                engine, source=archived.source, account_id=archived.account_id
            )
            if last is not None and archived.taken_at <= last:
                outcome.skipped.append(archived)
                continue
            result = _backfill_one(engine, settings, spec, archived, allow_mass_removal, clock)
            outcome.loaded.append((archived, result))
            outcome.problems.extend(
                f"{archived.path}: {o.error}" for o in result.outcomes if o.error
            )
    return outcome


def _backfill_one(
    engine: Engine,
    settings: Settings,
    spec: SourceSpec,
    archived: ArchivedResponse,
    allow_mass_removal: bool,
    clock: Clock,
) -> SyncResult:
    run_at = archived.taken_at
    result = SyncResult(
        run_id=start_run(engine, trigger="backfill", started_at=run_at),
        trigger="backfill",
        run_at=run_at,
    )
    started = time.monotonic()
    with log_context(run_id=result.run_id, source=spec.name, account_id=archived.account_id):
        error: BaseException | None = None
        load: LoadResult | None = None
        try:
            with open_archive(archived) as body:
                load = load_source_listing(
                    engine,
                    settings,
                    spec,
                    archived.account_id,
                    body,
                    run_id=result.run_id,
                    run_at=run_at,
                    allow_mass_removal=allow_mass_removal,
                    archive=False,
                )
        except Exception as exc:  # one bad archive never stops the others
            error = exc
        result.outcomes.append(
            record_outcome(
                engine, result.run_id, spec.name, archived.account_id, load, error, started
            )
        )
        finish_result(engine, result, clock)
    return result
