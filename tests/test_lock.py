"""The sync advisory lock, within one process and across two real processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from etl.db.lock import SYNC_LOCK_KEY, sync_lock
from etl.errors import SyncLocked

HOLDER = """
import sys
from etl.db.engine import make_engine
from etl.db.lock import sync_lock

with sync_lock(make_engine(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def holder_pid(engine: Engine) -> int | None:
    """The backend pid holding the sync lock, read from pg_locks."""
    with engine.connect() as conn:
        pid: int | None = conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = :objid AND classid = :classid"
            ),
            {"objid": SYNC_LOCK_KEY & 0xFFFFFFFF, "classid": SYNC_LOCK_KEY >> 32},
        ).scalar()
    return pid


@pytest.fixture
def other_process(database_url: str) -> Iterator[subprocess.Popen[str]]:
    """A separate Python process holding the sync lock until a line arrives on its stdin."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_second_acquire_raises_sync_locked(engine: Engine) -> None:
    """While the lock is held, another acquire fails at once naming the key and holder pid."""
    with sync_lock(engine):
        pid = holder_pid(engine)
        with pytest.raises(SyncLocked) as locked, sync_lock(engine):
            pass  # pragma: no cover - never reached

    assert str(locked.value) == (
        f"another sync is running (advisory lock {SYNC_LOCK_KEY} held by pid {pid})"
    )
    assert holder_pid(engine) is None


def test_lock_is_released_when_the_block_raises(engine: Engine) -> None:
    """An exception inside the block still releases the lock."""
    with pytest.raises(RuntimeError), sync_lock(engine):
        raise RuntimeError("sync failed")

    with sync_lock(engine):
        assert holder_pid(engine) is not None


def test_wait_mode_acquires_after_release(engine: Engine) -> None:
    """With wait=True the second caller blocks until the first releases, then gets the lock."""
    released = threading.Event()

    def hold_briefly() -> None:
        with sync_lock(engine):
            time.sleep(0.5)
            released.set()

    first = threading.Thread(target=hold_briefly)
    first.start()
    while holder_pid(engine) is None:
        time.sleep(0.01)
    with sync_lock(engine, wait=True, timeout_s=30):
        assert released.is_set()
    first.join()


def test_wait_mode_times_out(engine: Engine) -> None:
    """With wait=True and a timeout, a lock that stays held raises SyncLocked after the timeout."""
    with sync_lock(engine):
        pid = holder_pid(engine)
        started = time.monotonic()
        with pytest.raises(SyncLocked) as locked, sync_lock(engine, wait=True, timeout_s=0.3):
            pass  # pragma: no cover - never reached
        waited = time.monotonic() - started

    assert str(locked.value) == (
        "another sync is still running after 0.3s "
        f"(advisory lock {SYNC_LOCK_KEY} held by pid {pid})"
    )
    assert 0.3 <= waited < 5


def test_lock_held_by_another_process(engine: Engine, other_process: subprocess.Popen[str]) -> None:
    """A sync in another process blocks this one; after it releases, this one may run."""
    pid = holder_pid(engine)
    with pytest.raises(SyncLocked, match=f"held by pid {pid}"), sync_lock(engine):
        pass  # pragma: no cover - never reached

    assert other_process.stdin is not None
    assert other_process.stdout is not None
    threading.Timer(0.3, lambda: other_process.communicate("\n", timeout=10)).start()
    with sync_lock(engine, wait=True, timeout_s=30):
        assert holder_pid(engine) is not None
    assert other_process.wait(timeout=10) == 0


def test_killed_process_releases_the_lock(
    engine: Engine, other_process: subprocess.Popen[str]
) -> None:
    """A sync process killed with SIGKILL loses its connection, and with it the lock."""
    other_process.kill()
    other_process.wait(timeout=10)

    with sync_lock(engine, wait=True, timeout_s=30):
        assert holder_pid(engine) is not None
