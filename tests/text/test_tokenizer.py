import pytest

from edge_clipguard.text.tokenizer import default_tokenizer, encode_texts, load_tokenizer, minilm_dir

TEXTS = [
    "About the star: The gorgeously elaborate continuation of ''The Lord of the Rings'' trilogy!",
    "Re the crosses - @anonymous great seeing you on Twitter...who knew? :) #happy",
    "does your apex dvd player only play dvd audio without video?",
    "Naïve café façade — ünïcödé and 123,456.78 numbers",
]


def test_ids_match_the_transformers_tokenizer_of_the_same_vocab():
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(minilm_dir()))
    ours = encode_texts(default_tokenizer(32), TEXTS)
    expected = reference(TEXTS, padding="max_length", truncation=True, max_length=32, return_tensors="np")
    assert (ours.input_ids == expected["input_ids"]).all()
    assert (ours.attention_mask == expected["attention_mask"]).all()


def test_tokenizer_json_round_trips_with_padding_and_truncation(tmp_path):
    path = tmp_path / "tokenizer.json"
    default_tokenizer(12).save(str(path))
    loaded = encode_texts(load_tokenizer(path), TEXTS)
    assert loaded.input_ids.shape == (len(TEXTS), 12)
    assert (loaded.input_ids == encode_texts(default_tokenizer(12), TEXTS).input_ids).all()


@pytest.mark.parametrize(("text", "cut"), [("short text", False), (" ".join(["word"] * 40), True)])
def test_truncation_is_reported(text, cut):
    assert encode_texts(default_tokenizer(16), [text]).truncated == (cut,)
