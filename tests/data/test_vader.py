import json
from collections import Counter

import pytest

from edge_clipguard.data.manifest import Sample
from edge_clipguard.data.vader import (
    DOMAINS,
    load_vader,
    parse_ground_truth,
    prepare_vader,
    rating_to_score,
    split_domain,
)
from edge_clipguard.errors import DataError


def test_rating_maps_to_zero_ten():
    assert (rating_to_score(-4), rating_to_score(0), rating_to_score(4)) == (0.0, 5.0, 10.0)


def test_ground_truth_lines_parse_with_crlf():
    rows = parse_ground_truth("1\t2.0\tGreat phone!\r\n2\t-1.2\tMeh.\r\n", "tweets", "t.txt")
    assert [(r.id, r.text, r.score) for r in rows] == [("tweets:1", "Great phone!", 7.5), ("tweets:2", "Meh.", 3.5)]


def test_malformed_ground_truth_line_names_source_and_line():
    with pytest.raises(DataError, match=r"t\.txt:2: expected"):
        parse_ground_truth("1\t2.0\tok\r\nbroken line\r\n", "tweets", "t.txt")


def test_split_is_seeded_disjoint_and_80_10_10():
    rows = [Sample(image=None, text=f"s{i}", score=5.0, id=f"d:{i}") for i in range(1000)]
    first, again, other = split_domain(rows, "d", 0), split_domain(rows, "d", 0), split_domain(rows, "d", 1)
    assert [r.split for r in first] == [r.split for r in again]
    assert [r.split for r in first] != [r.split for r in other]
    assert Counter(r.split for r in first) == {"train": 800, "val": 100, "test": 100}


def test_prepared_vader_has_all_sentences_in_four_domains(vader_dir):
    rows = load_vader(vader_dir)
    counts = Counter(r.domain for r in rows)
    assert counts == {"tweets": 4200, "movies": 10605, "amazon": 3708, "nyt": 5190}
    assert set(counts) == set(DOMAINS)
    assert all(0.0 <= r.score <= 10.0 for r in rows)


def test_prepared_vader_splits_every_domain(vader_dir):
    counts = Counter((r.domain, r.split) for r in load_vader(vader_dir))
    for domain in DOMAINS:
        total = sum(v for (d, _), v in counts.items() if d == domain)
        assert abs(counts[(domain, "test")] - 0.1 * total) <= 1


def test_rerun_is_a_no_op(vader_dir):
    manifest = vader_dir / "vader.jsonl"
    before = manifest.stat().st_mtime_ns
    assert prepare_vader(vader_dir, seed=0) == manifest
    assert manifest.stat().st_mtime_ns == before


def test_meta_records_the_source_and_seed(vader_dir):
    meta = json.loads((vader_dir / "vader.meta.json").read_text())
    assert (meta["source"], meta["seed"], meta["rows"]) == ("vadersentiment==3.3.2", 0, 23703)


def test_per_split_manifests_partition_the_rows(vader_dir):
    from edge_clipguard.data.manifest import read_manifest

    parts = {split: read_manifest(vader_dir / f"{split}.jsonl") for split in ("train", "val", "test")}
    assert all(r.split == split for split, rows in parts.items() for r in rows)
    assert sum(len(rows) for rows in parts.values()) == 23703
