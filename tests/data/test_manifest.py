import json

import pytest

from edge_clipguard.data.manifest import Sample, read_manifest, write_manifest
from edge_clipguard.data.text_refs import load_manifest
from edge_clipguard.errors import DataError


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"image": "a.jpg", "text": "about the star: lovely", "score": 7.5, "boxes": [[1, 2, 30, 40]], "labels": [3]}


def test_round_trip_keeps_fields_and_relative_paths(tmp_path):
    sample = Sample(image=str(tmp_path / "img" / "a.jpg"), text="hi", score=2.5, boxes=((1.0, 2.0, 3.0, 4.0),),
                    labels=(1,), domain="tweets", id="x:1", split="val", text_id="tweets:9")
    path = write_manifest(tmp_path / "m.jsonl", [sample])
    assert json.loads(path.read_text())["image"] == "img/a.jpg"
    assert read_manifest(path) == [sample]


def test_row_without_a_score_reads_as_score_none(tmp_path):
    no_score = {k: v for k, v in GOOD.items() if k != "score"}
    path = _write(tmp_path / "m.jsonl", [no_score, {**GOOD, "score": None}])
    assert [s.score for s in read_manifest(path)] == [None, None]


def test_row_without_a_score_round_trips_exactly(tmp_path):
    no_score = {k: v for k, v in GOOD.items() if k != "score"}
    first = _write(tmp_path / "m.jsonl", [no_score, GOOD])
    again = write_manifest(tmp_path / "again.jsonl", read_manifest(first))
    assert [json.loads(line) for line in again.read_text().splitlines()] == [no_score, GOOD]
    assert read_manifest(again) == read_manifest(first)


def test_row_with_neither_image_nor_score_is_rejected(tmp_path):
    path = _write(tmp_path / "m.jsonl", [{"image": None, "text": "hi", "boxes": [], "labels": []}])
    with pytest.raises(DataError, match=r"m\.jsonl:1: a row needs an 'image' or a 'score'"):
        read_manifest(path)


def test_bad_score_names_file_line_and_field(tmp_path):
    path = _write(tmp_path / "m.jsonl", [GOOD, {**GOOD, "score": 11}])
    with pytest.raises(DataError, match=r"m\.jsonl:2: field 'score' must be a number in \[0, 10\], got 11"):
        read_manifest(path)


def test_boxes_and_labels_must_pair_up(tmp_path):
    path = _write(tmp_path / "m.jsonl", [{**GOOD, "labels": []}])
    with pytest.raises(DataError, match="'boxes' and 'labels' must be lists of equal length"):
        read_manifest(path)


def test_degenerate_box_is_rejected(tmp_path):
    path = _write(tmp_path / "m.jsonl", [{**GOOD, "boxes": [[5, 5, 5, 9]]}])
    with pytest.raises(DataError, match=r"boxes\[0\] must have x2 > x1"):
        read_manifest(path)


def test_label_beyond_model_classes_is_rejected(tmp_path):
    path = _write(tmp_path / "m.jsonl", [GOOD])
    with pytest.raises(DataError, match="labels\\[0\\] = 3 but the model has 2 classes"):
        read_manifest(path, num_classes=2)


def test_invalid_json_line_is_named(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(DataError, match=r"m\.jsonl:2: invalid JSON"):
        read_manifest(path)


def test_missing_manifest_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def _ref_row(ref_id="tweets:1", **extra):
    return {"image": "a.png", "text_ref": {"source": "vader", "id": ref_id, "prefix": "About the star: "},
            "boxes": [[1, 2, 30, 40]], "labels": [3], **extra}


def _vader_sentence(vader_dir, index=0):
    from edge_clipguard.data.vader import load_vader

    return load_vader(vader_dir, split="train")[index]


def test_text_ref_resolves_text_and_score_from_the_vader_cache(tmp_path, vader_dir):
    sentence = _vader_sentence(vader_dir)
    path = _write(tmp_path / "m.jsonl", [_ref_row(sentence.id)])
    [sample] = load_manifest(path, vader_dir=vader_dir)
    assert (sample.text, sample.score) == ("About the star: " + sentence.text, sentence.score)


def test_text_ref_rows_are_written_back_without_the_text(tmp_path, vader_dir):
    sentence = _vader_sentence(vader_dir, 5)
    path = _write(tmp_path / "m.jsonl", [_ref_row(sentence.id)])
    written = json.loads(write_manifest(tmp_path / "out.jsonl", load_manifest(path, vader_dir=vader_dir)).read_text())
    assert written["text_ref"] == {"source": "vader", "id": sentence.id, "prefix": "About the star: "}
    assert "text" not in written and "score" not in written


def test_plain_reader_refuses_a_text_ref_row_without_a_resolver(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_ref_row()])
    with pytest.raises(DataError, match=r"m\.jsonl:1: field 'text_ref' needs a text resolver; .*load_manifest"):
        read_manifest(path)


def test_text_ref_next_to_text_is_rejected(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_ref_row(text="hello")])
    with pytest.raises(DataError, match=r"m\.jsonl:1: field 'text_ref' replaces 'text' and 'score'; drop \['text'\]"):
        load_manifest(path, vader_dir=tmp_path / "no-cache")


def test_text_ref_with_unknown_source_is_rejected(tmp_path):
    row = {**_ref_row(), "text_ref": {"source": "imdb", "id": "x:1"}}
    path = _write(tmp_path / "m.jsonl", [row])
    with pytest.raises(DataError, match=r"m\.jsonl:1: text_ref 'source' must be one of \['vader'\], got 'imdb'"):
        load_manifest(path, vader_dir=tmp_path / "no-cache")


def test_unknown_text_ref_id_names_file_line_and_id(tmp_path, vader_dir):
    path = _write(tmp_path / "m.jsonl", [GOOD, _ref_row("tweets:no-such-row")])
    with pytest.raises(DataError, match=r"m\.jsonl:2: text_ref id 'tweets:no-such-row' is not in the VADER cache"):
        load_manifest(path, vader_dir=vader_dir)


def test_missing_vader_cache_says_how_to_prepare_it(tmp_path):
    from edge_clipguard.data.manifest import parse_row
    from edge_clipguard.data.text_refs import VaderResolver

    resolve = VaderResolver(tmp_path / "cache", prepare=False)
    with pytest.raises(DataError, match=r"m\.jsonl:1: text_ref needs the VADER cache.*edge-clipguard data vader --out"):
        parse_row(_ref_row(), "m.jsonl:1", tmp_path, resolve=resolve)


def test_missing_vader_cache_is_prepared_on_first_use(tmp_path, vader_dir):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(vader_dir / "sdist", cache / "sdist")  # pip's download, so no network is needed here
    sentence = _vader_sentence(vader_dir)
    path = _write(tmp_path / "m.jsonl", [_ref_row(sentence.id)])
    [sample] = load_manifest(path, vader_dir=cache)
    assert sample.text.endswith(sentence.text) and (cache / "vader.jsonl").is_file()


def test_rows_without_text_ref_never_touch_the_vader_cache(tmp_path):
    path = _write(tmp_path / "m.jsonl", [GOOD])
    assert load_manifest(path, vader_dir=tmp_path / "cache")[0].text == GOOD["text"]
    assert not (tmp_path / "cache").exists()


def test_non_utf8_line_is_named_with_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"m\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 14\)"):
        read_manifest(path)
