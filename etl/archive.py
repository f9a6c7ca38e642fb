"""Raw response archive (SPEC §6): `{dir}/{source}/{account_id}/{YYYYMMDDTHHMMSSZ}.json.gz`.

A response body is teed into a gzip file while it is parsed, so the archive
holds exactly the bytes that were parsed and memory stays flat. The file is
written under a temporary name and renamed into place only once the body was
read to its end; an incomplete body leaves no archive.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, unquote

from etl.errors import ArchiveError

log = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
FAILED_PREFIX = "failed-"  # a complete listing whose load failed: kept, never backfilled
_ARCHIVE_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-\d+)?\.json\.gz$")


def archive_path(directory: Path, source: str, account_id: str, taken_at: datetime) -> Path:
    """Where the response of (source, account) taken at `taken_at` is archived.

    >>> archive_path(Path("/a"), "sinch", "8888123", datetime(2026, 11, 22, 10, 15, tzinfo=UTC))
    PosixPath('/a/sinch/8888123/20261122T101500Z.json.gz')
    """
    stamp = taken_at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    return directory / source / _safe_component(account_id) / f"{stamp}.json.gz"


def _safe_component(name: str) -> str:
    """The account id as one path component, reversibly (`parse_archive_name` unquotes it)."""
    quoted = quote(name, safe="@")
    return quoted.replace(".", "%2E") if quoted in {".", ".."} else quoted


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _TeeReader:
    """A read-only byte stream that copies everything read from `source` into `sink`."""

    def __init__(self, source: BinaryIO, sink: _Sink) -> None:
        self._source = source
        self._sink = sink
        self.at_eof = False

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if chunk:
            self._sink.write(chunk)
        if (size is None or size < 0) or (not chunk and size != 0):
            self.at_eof = True  # read() of everything, or an empty read: the end was reached
        return chunk


@contextlib.contextmanager
def tee_to_archive(
    body: BinaryIO, directory: Path | None, source: str, account_id: str, taken_at: datetime
) -> Iterator[BinaryIO]:
    """Yield `body`, archiving what is read from it when `directory` is set.

    A body read to its end is archived once the gzip file is complete: as
    `{ts}.json.gz` when the block ended normally, as `failed-{ts}.json.gz` when it
    raised (a listing refused by the mass-removal guard, a failed load: kept for
    inspection, never replayed by backfill). A body not read to its end leaves nothing.
    """
    if directory is None:
        yield body
        return
    final = archive_path(directory, source, account_id, taken_at)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".incoming-", suffix=".json.gz")
    tmp = Path(tmp_name)
    failure: BaseException | None = None
    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as gz:
            tee = _TeeReader(body, gz)
            try:
                yield tee  # type: ignore[misc]
            except BaseException as exc:  # re-raised below, once the archive is settled
                failure = exc
        if tee.at_eof:
            target = final if failure is None else final.with_name(FAILED_PREFIX + final.name)
            try:
                os.replace(tmp, _unused_name(target))
            except OSError:
                if failure is None:
                    raise
                log.warning("could not keep the archive of a failed load", exc_info=True)
    finally:
        tmp.unlink(missing_ok=True)
    if failure is not None:
        raise failure


def _unused_name(path: Path) -> Path:
    """`path`, or `path` with -1, -2… before the suffix when it already exists."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(path.name.replace(".json.gz", f"-{n}.json.gz"))
    return candidate


@dataclass(frozen=True, order=True)
class ArchivedResponse:
    """One archived response: when it was taken, for which (source, account), and where."""

    taken_at: datetime
    source: str
    account_id: str
    path: Path


def parse_archive_name(path: Path) -> ArchivedResponse:
    """Read (source, account, timestamp) from an archive path; ArchiveError if it is not one."""
    match = _ARCHIVE_NAME.match(path.name)
    if not match or len(path.parts) < 3:
        raise ArchiveError(
            f"{path}: not an archive file "
            "(expected {source}/{account}/YYYYMMDDTHHMMSSZ.json.gz)"
        )
    taken_at = datetime.strptime(match.group(1), TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    return ArchivedResponse(taken_at, path.parent.parent.name, unquote(path.parent.name), path)


def find_archives(paths: Iterable[Path]) -> tuple[list[ArchivedResponse], list[ArchiveError]]:
    """Archive files under the given files/folders, oldest first, and the paths that are not."""
    found: list[ArchivedResponse] = []
    problems: list[ArchiveError] = []
    for path in paths:
        if path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*.json.gz") if not p.name.startswith((".", FAILED_PREFIX))
            )
        elif path.exists():
            candidates = [path]
        else:
            problems.append(ArchiveError(f"{path}: no such file or directory"))
            continue
        for candidate in candidates:
            try:
                found.append(parse_archive_name(candidate.resolve()))
            except ArchiveError as exc:
                problems.append(exc)
    return sorted(set(found)), problems


@contextlib.contextmanager
def open_archive(archived: ArchivedResponse) -> Iterator[BinaryIO]:
    """The decompressed body of an archived response."""
    with gzip.open(archived.path, "rb") as body:
        yield body  # type: ignore[misc]
