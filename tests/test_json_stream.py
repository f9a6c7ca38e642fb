"""The streaming listing parser against the standard library on arbitrary JSON in odd chunks."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.errors import MalformedResponse
from etl.extract import _json
from etl.extract._json import parse_array, parse_object_array
from etl.transform import RawRecord

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


class Trickle(io.RawIOBase):
    """A byte stream that hands out at most `size` bytes per read, to split every token."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self._size = size

    def readable(self) -> bool:
        """Always readable."""
        return True

    def read(self, size: int = -1) -> bytes:
        """At most `self._size` bytes, whatever was asked."""
        return self._data.read(min(self._size, size if size >= 0 else self._size))


def dumps(value: Any, indent: int | None) -> bytes:
    """JSON with Decimals as exact numbers (the shape providers send)."""

    class Exact(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            return float(o) if isinstance(o, Decimal) else super().default(o)

    text = json.dumps(value, cls=Exact, indent=indent, ensure_ascii=False)
    return text.encode()


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(VALUES, max_size=8), chunk=st.integers(1, 9), indent=st.sampled_from([None, 2])
)
def test_array_items_equal_json_loads(items: list[Any], chunk: int, indent: int | None) -> None:
    """Any array, read a few bytes at a time, yields what json.loads yields, item by item."""
    body = dumps(items, indent)
    expected = json.loads(body, parse_float=Decimal)
    got = list(parse_array(Trickle(body, chunk), source="s", account_id="a").records)
    assert got == expected
    for record in got:
        if isinstance(record, RawRecord):
            assert json.loads(record.json_text, parse_float=Decimal) == record


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(VALUES, max_size=6),
    before=st.dictionaries(st.sampled_from(["a", "b", "sharedNumber"]), VALUES, max_size=2),
    chunk=st.integers(1, 7),
)
def test_object_array_items_and_extras(
    items: list[Any], before: dict[str, Any], chunk: int
) -> None:
    """The array under a key streams whole, and the named scalar member lands in extras."""
    document = {**before, "numbers": items}
    body = dumps(document, None)
    listing = parse_object_array(
        Trickle(body, chunk),
        source="s",
        account_id="a",
        array_key="numbers",
        extra_keys={"sharedNumber": "shared_number"},
    )
    assert list(listing.records) == json.loads(dumps(items, None), parse_float=Decimal)
    shared = json.loads(dumps(before, None), parse_float=Decimal).get("sharedNumber")
    assert listing.extras == {"shared_number": shared}


@settings(max_examples=200, deadline=None)
@given(items=st.lists(VALUES, min_size=1, max_size=6), cut=st.floats(0.05, 0.95))
def test_any_truncation_is_malformed(items: list[Any], cut: float) -> None:
    """A body cut anywhere before its end raises MalformedResponse, never a half listing."""
    body = dumps(items, None)
    truncated = body[: max(1, int(len(body) * cut))]
    if truncated == body:
        return
    with pytest.raises(MalformedResponse):
        list(parse_array(Trickle(truncated, 5), source="s", account_id="a").records)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(b"[NaN]", "ValueError in the value at character 1", id="nan"),
        pytest.param(b"[1, -Infinity]", "ValueError in the value at character 4", id="infinity"),
        pytest.param(
            b"[" + b"9" * 5000 + b"]", "ValueError in the value at character 1", id="huge"
        ),
        pytest.param(
            b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]",
            "RecursionError in the value at character 1",
            id="deep",
        ),
    ],
)
def test_values_json_allows_but_we_cannot_store_are_malformed(body: bytes, detail: str) -> None:
    """NaN/Infinity (never floats), 4,300+ digit integers and deep nesting are MalformedResponse."""
    with pytest.raises(MalformedResponse) as caught:
        list(parse_array(io.BytesIO(body), source="s", account_id="a").records)
    assert str(caught.value) == f"s/a: the response body is not valid JSON: {detail}"


def test_a_repeated_listing_key_is_malformed() -> None:
    """Two "numbers" arrays in one object are refused rather than both loaded."""
    listing = parse_object_array(
        io.BytesIO(b'{"numbers": [1], "numbers": [2]}'),
        source="s",
        account_id="a",
        array_key="numbers",
        extra_keys={},
    )
    with pytest.raises(MalformedResponse, match='"numbers" appears twice in the response'):
        list(listing.records)


def test_a_large_element_is_read_in_growing_chunks() -> None:
    """A 4 MB record parses whole (reads grow with the element instead of restarting per 64 KiB)."""
    body = b'[{"x": "' + b"a" * 4_000_000 + b'"}, 2]'
    records = list(parse_array(io.BytesIO(body), source="s", account_id="a").records)
    assert [len(records[0]["x"]), records[1]] == [4_000_000, 2]


OBJECTS = st.dictionaries(
    st.text(max_size=4),
    st.one_of(
        st.text(alphabet='{}[],:"\\ x', max_size=12),  # the splitter's look-alikes
        st.integers(),
        st.dictionaries(st.text(max_size=3), st.text(alphabet="},{", max_size=4), max_size=2),
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(OBJECTS, max_size=40),
    chunk=st.sampled_from([7, 64, 1024, 65536]),
    indent=st.sampled_from([None, 1]),
)
def test_object_elements_keep_their_exact_text(
    items: list[dict[str, Any]], chunk: int, indent: int | None
) -> None:
    """Objects split in batches come out as the exact texts the array was written from."""
    texts = [dumps(item, indent) for item in items]
    body = b"[" + b", ".join(texts) + b"]"

    listing = parse_array(Trickle(body, chunk), source="s", account_id="a")

    assert list(listing.elements) == texts


def test_a_batch_the_fast_splitter_refuses_is_split_one_by_one() -> None:
    """A lone surrogate escape (refused by msgspec) and a 30-digit integer still parse exactly."""
    body = b'[{"a": "\\ud800"}, {"b": 123456789012345678901234567890}, {"c": 1}]'

    records = list(parse_array(io.BytesIO(body), source="s", account_id="a").records)

    assert records == [{"a": "\ud800"}, {"b": 123456789012345678901234567890}, {"c": 1}]


def test_deep_nesting_after_a_batch_is_a_malformed_response() -> None:
    """Nesting too deep for either decoder is MalformedResponse, also where a batch is tried."""
    body = b'[{"x":1},' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b',{"b":1}]'

    with pytest.raises(MalformedResponse, match="RecursionError"):
        list(parse_array(io.BytesIO(body), source="s", account_id="a").elements)


@pytest.mark.parametrize("separator", [",", ",\n  "])
def test_elements_with_nested_objects_are_split_in_batches(separator: str) -> None:
    """Elements holding several inner objects ("}," inside) still split a buffer at a time.

    Counted by msgspec calls: about one per 64 KiB read, not one per element.
    """
    element = '{"number":1,"money":{"amount":"1.00"},"sms":{"a":1},"voice":{"b":2},"x":{"y":3}}'
    body = ("[" + separator.join([element] * 5000) + "]").encode()
    calls = 0
    split = _json._SPLIT

    def counting(text: str) -> Any:
        nonlocal calls
        calls += 1
        return split(text)

    _json._SPLIT = counting
    try:
        elements = list(parse_array(io.BytesIO(body), source="s", account_id="a").elements)
    finally:
        _json._SPLIT = split

    assert elements == [element.encode()] * 5000
    assert calls < len(body) / 65536 * 6


def exact(value: Any) -> Any:
    """A value with every type spelled out, so that 1 != 1.0 != True and 0.10 != 0.1."""
    if isinstance(value, dict):
        return ("dict", [(exact(k), exact(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [exact(v) for v in value])
    return (type(value).__name__, repr(value))


ODD_ELEMENTS = [
    b'{"a":1,"a":2}',  # a repeated key: the last one wins
    b'{"n":123456789012345678901234567890,"m":-9223372036854775809}',
    b'{"n":1E2,"m":-0,"k":-0.0,"j":1.5e-7,"i":1e400}',
    b'{"s":"\\ud83d\\ude00","t":"a\\u0000b","u":"\\ud800"}',  # a pair, NUL, a lone surrogate
    b'{"n":1.' + b"9" * 5000 + b"}",
    b' { "spaced" : [ 1 , 2.50 ] } ',
    b"[1,[2,[3]]]",
    b'"text"',
]


@pytest.mark.parametrize("element", ODD_ELEMENTS)
def test_decode_gives_exactly_what_the_json_module_gives(element: bytes) -> None:
    """msgspec decodes, the json module takes what it refuses: the values are the same."""
    listing = _json.Listing(iter(()), source="s", account_id="a")
    expected = json.loads(element, parse_float=Decimal)
    assert exact(listing.decode(element)) == exact(expected)


@settings(max_examples=300, deadline=None)
@given(value=VALUES, ascii_only=st.booleans())
def test_decode_equals_json_loads_for_any_value(value: Any, ascii_only: bool) -> None:
    """Any value, with or without ASCII escapes, decodes to json.loads' value, type for type."""
    element = json.dumps(
        value, ensure_ascii=ascii_only, default=lambda d: float(d) if isinstance(d, Decimal) else d
    ).encode()
    listing = _json.Listing(iter(()), source="s", account_id="a")
    assert exact(listing.decode(element)) == exact(json.loads(element, parse_float=Decimal))


@pytest.mark.parametrize(
    "element",
    [b"[NaN]", b"9" * 5000, b"[" * 100_000 + b"]" * 100_000, b"\xff", b'{"a":1'],
    ids=["nan", "huge", "deep", "not-utf8", "truncated"],
)
def test_decode_refuses_what_our_json_decoder_refuses(element: bytes) -> None:
    """What neither decoder takes (NaN included, which plain json.loads accepts) is refused."""
    listing = _json.Listing(iter(()), source="s", account_id="a")
    with pytest.raises(MalformedResponse, match="a listing element is not valid JSON"):
        listing.decode(element)
