"""The raw response archive (SPEC §6): paths, atomic writes, discovery in time order."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.archive import archive_path, find_archives, parse_archive_name, tee_to_archive

TAKEN_AT = datetime(2026, 11, 22, 10, 15, 0, tzinfo=UTC)


def test_archive_path_layout(tmp_path: Path) -> None:
    """Archives go to {dir}/{source}/{account}/{YYYYMMDDTHHMMSSZ}.json.gz."""
    assert archive_path(tmp_path, "sinch", "8888123", TAKEN_AT) == (
        tmp_path / "sinch" / "8888123" / "20261122T101500Z.json.gz"
    )


def test_a_body_read_to_the_end_is_archived_exactly(tmp_path: Path) -> None:
    """Everything read through the tee lands, gzipped, in the archive file."""
    body = b'[{"number": 14150005550}]' * 1000
    with tee_to_archive(io.BytesIO(body), tmp_path, "sinch", "1", TAKEN_AT) as stream:
        while stream.read(4096):
            pass
    path = tmp_path / "sinch" / "1" / "20261122T101500Z.json.gz"
    assert gzip.decompress(path.read_bytes()) == body
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_an_unfinished_body_leaves_no_archive(tmp_path: Path) -> None:
    """A body not read to its end (a failed parse) is not archived, and no temp file stays."""

    def read_two_bytes_then_fail() -> None:
        with tee_to_archive(io.BytesIO(b"[1, 2, 3]"), tmp_path, "sinch", "1", TAKEN_AT) as s:
            s.read(2)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        read_two_bytes_then_fail()
    assert list((tmp_path / "sinch" / "1").iterdir()) == []


def test_two_archives_in_the_same_second_do_not_overwrite(tmp_path: Path) -> None:
    """A second response taken in the same second is kept beside the first."""
    for body in (b"[1]", b"[2]"):
        with tee_to_archive(io.BytesIO(body), tmp_path, "pingram", "default", TAKEN_AT) as s:
            s.read()
    names = sorted(p.name for p in (tmp_path / "pingram" / "default").iterdir())
    assert names == ["20261122T101500Z-1.json.gz", "20261122T101500Z.json.gz"]


def test_find_archives_sorts_by_time_and_reports_strangers(tmp_path: Path) -> None:
    """Archives are found under folders oldest first; other files are reported."""
    for stamp in ("20261122T101500Z", "20261121T090000Z"):
        path = tmp_path / "sinch" / "8888123" / f"{stamp}.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"[]"))
    stranger = tmp_path / "sinch" / "8888123" / "notes.json.gz"
    stranger.write_bytes(b"")
    found, problems = find_archives([tmp_path, tmp_path / "missing"])
    assert [a.taken_at.strftime("%d %H") for a in found] == ["21 09", "22 10"]
    assert {(a.source, a.account_id) for a in found} == {("sinch", "8888123")}
    assert len(problems) == 2
    assert "notes.json.gz: not an archive file" in str(problems[0])
    assert "missing: no such file or directory" in str(problems[1])


def test_parse_archive_name_reads_source_account_and_time() -> None:
    """The path itself says which source, account and time an archive holds."""
    archived = parse_archive_name(Path("/a/pingram/acme/20261122T101500Z.json.gz"))
    assert (archived.source, archived.account_id, archived.taken_at) == (
        "pingram",
        "acme",
        TAKEN_AT,
    )


def test_account_ids_round_trip_through_the_archive_path(tmp_path: Path) -> None:
    """Any account id is one safe path component and reads back unchanged."""
    for account in ("acme corp/eu", "..", "8888123"):
        path = archive_path(tmp_path, "pingram", account, TAKEN_AT)
        assert path.parent.parent == tmp_path / "pingram"
        assert parse_archive_name(path).account_id == account


def test_a_body_read_whole_is_archived_even_when_loading_it_fails(tmp_path: Path) -> None:
    """A complete listing whose load fails is kept as failed-…, which backfill skips."""

    def read_all_then_fail() -> None:
        with tee_to_archive(io.BytesIO(b"[]"), tmp_path, "sinch", "1", TAKEN_AT) as s:
            s.read()
            raise RuntimeError

    with pytest.raises(RuntimeError):
        read_all_then_fail()
    kept = tmp_path / "sinch" / "1" / "failed-20261122T101500Z.json.gz"
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]
    assert gzip.decompress(kept.read_bytes()) == b"[]"
    assert find_archives([tmp_path]) == ([], [])  # never replayed by backfill
