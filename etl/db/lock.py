"""The sync lock: at most one sync at a time per database, across processes (SPEC §5.7).

A session-level PostgreSQL advisory lock, held on a dedicated connection (in
autocommit mode, so no transaction stays open) for as long as the `with` block
runs. If the process dies, PostgreSQL drops the connection and the lock with it.

The key is the fixed 64-bit number `SYNC_LOCK_KEY` (the bytes "NUMBERS" +
0x01), so any tool can see who holds it:

    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND classid = 1314213186 AND objid = 1163023105
      AND objsubid = 1 AND granted;
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from etl.errors import SyncLocked

SYNC_LOCK_KEY = int.from_bytes(b"NUMBERS\x01", "big")

_HOLDER = text(
    """
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND classid = :classid AND objid = :objid
    LIMIT 1
    """
)


@contextlib.contextmanager
def sync_lock(
    engine: Engine, *, wait: bool = False, timeout_s: float | None = None
) -> Iterator[None]:
    """Hold the sync lock for the duration of the block.

    With `wait=False` (the default), raise `SyncLocked` at once if another
    session holds it. With `wait=True`, block until it is free, or raise
    `SyncLocked` after `timeout_s` seconds (None waits forever).
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if wait:
            _wait_for_lock(conn, timeout_s)
        elif not conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": SYNC_LOCK_KEY}
        ).scalar_one():
            raise SyncLocked(f"another sync is running ({describe_holder(conn)})")
        try:
            yield
        finally:
            with contextlib.suppress(DBAPIError):  # a dead connection has released it anyway
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SYNC_LOCK_KEY})


def _wait_for_lock(conn: Connection, timeout_s: float | None) -> None:
    timeout_ms = 0 if timeout_s is None else max(1, round(timeout_s * 1000))
    conn.execute(text("SELECT set_config('lock_timeout', :ms, false)"), {"ms": str(timeout_ms)})
    try:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SYNC_LOCK_KEY})
    except OperationalError as exc:  # lock_timeout: 55P03 lock_not_available
        if getattr(exc.orig, "sqlstate", None) != "55P03":
            raise
        raise SyncLocked(
            f"another sync is still running after {timeout_s:g}s ({describe_holder(conn)})"
        ) from None
    finally:
        conn.execute(text("RESET lock_timeout"))


def describe_holder(conn: Connection) -> str:
    """'advisory lock N held by pid P' (or 'advisory lock N' when the holder just left)."""
    pid = conn.execute(
        _HOLDER, {"classid": SYNC_LOCK_KEY >> 32, "objid": SYNC_LOCK_KEY & 0xFFFFFFFF}
    ).scalar()
    held = f"advisory lock {SYNC_LOCK_KEY}"
    return held if pid is None else f"{held} held by pid {pid}"
