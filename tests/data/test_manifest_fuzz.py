"""Fuzzing the JSONL manifest reader: whatever the rows hold, only DataError (a ClipGuardError) escapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_clipguard.data.manifest import REQUIRED_FIELDS, Sample, parse_row, read_manifest
from edge_clipguard.errors import ClipGuardError, DataError

FUZZ = settings(max_examples=150, deadline=None)
GOOD = {"image": "a.jpg", "text": "about the star: lovely", "score": 7.5, "boxes": [[1, 2, 30, 40]], "labels": [3],
        "domain": "tweets", "id": "x:1"}
# Values that break naive checks: huge ints (float() overflows), non-finite floats, NUL in paths, odd types.
NASTY = st.sampled_from([10**400, -(10**400), float("inf"), float("nan"), -0.0, "\x00", "a\x00b.jpg", "", " ", True,
                         [], {}, [[]], [[1, 2, 3, 4, 5]], [10**400, 0, 1, 1], "../../etc/passwd", "\ud800"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | NASTY,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
FIELDS = sorted({*GOOD, *REQUIRED_FIELDS, "text_ref", "split", "text_id"})


@st.composite
def rows(draw):
    """Mostly-valid rows: GOOD with some fields replaced by arbitrary JSON, some dropped, some added."""
    row = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        row[name] = draw(JSON)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        row.pop(name, None)
    row.update(draw(st.dictionaries(st.text(max_size=6), JSON, max_size=2)))
    return draw(st.one_of(st.just(row), JSON))


def _text_ref_resolver(ref, where):
    raise DataError(f"{where}: no such sentence {ref.id!r}")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("manifest_fuzz")


@FUZZ
@given(row=rows())
@example(row={**GOOD, "score": 10**400})
@example(row={**GOOD, "image": "a\x00b.jpg"})
@example(row={**GOOD, "boxes": [[10**400, 0, 1, 1]]})
def test_parse_row_raises_only_data_errors(row, work):
    try:
        sample = parse_row(row, "m.jsonl:1", work, num_classes=6, resolve=_text_ref_resolver)
    except ClipGuardError:
        return
    assert isinstance(sample, Sample) and (sample.score is None or 0.0 <= sample.score <= 10.0)


@FUZZ
@given(lines=st.lists(st.one_of(rows().map(json.dumps), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))),
                      max_size=4),
       raw=st.binary(max_size=64))
@example(lines=["[" * 100_000], raw=b"")
@example(lines=[], raw=b"\xff\xfe{\n")
def test_read_manifest_raises_only_data_errors(lines, raw, work):
    path = work / "m.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw)
    try:
        samples = read_manifest(path, num_classes=6)
    except ClipGuardError:
        return
    assert samples and all(isinstance(s, Sample) for s in samples)
