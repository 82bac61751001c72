"""Training-time text augmentation that keeps the label true: word dropout and punctuation noise.

The labels of a text are its 0-10 score (human ratings of the sentence: VADER's ground truth) and the class its
mention names (which boxes are the targets). So a word may go only if it carries neither:

  * never dropped: the class names and their plurals, every word of VADER's sentiment lexicon (the words the
    raters reacted to), negations (VADER's ``NEGATE`` list and any ``n't``), intensifiers and dampeners
    (VADER's ``BOOSTER_DICT``), contrast words ("but", "however", ...: VADER shifts the weight around them),
    spatial and counting words (for referring texts such as "the car on the left"), numbers, and words in
    capitals (emphasis);
  * never touched: ``!`` and ``?`` (VADER and raters read them as intensity), so punctuation noise only drops
    or adds commas and a sentence's final full stop.

Casing noise is left out on purpose: the MiniLM tokenizer lowercases (it would change nothing). Synonym
replacement is left out: no thesaurus installs from the package registry without a separate data download.

Set in the config JSON's ``augment`` section (``text: true``; ``word_drop``, ``max_drop_fraction``,
``punct_prob``); training set only; seeded by (seed, epoch, row) like the image augmentation.
"""

from __future__ import annotations

import functools
import re

import numpy as np

CONTRAST_WORDS = frozenset({"but", "however", "although", "though", "yet", "nevertheless", "except", "despite"})
SPATIAL_WORDS = frozenset({"left", "right", "top", "bottom", "middle", "center", "centre", "above", "below", "under",
                           "over", "near", "behind", "front", "between", "next", "first", "second", "third", "last",
                           "one", "two", "three", "four", "five", "all", "every", "each", "only", "none", "not",
                           "no", "nor", "never", "without"})
_WORD = re.compile(r"\S+")
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")
_TEXT_SEED_TAG = 7  # keeps text draws independent of the image draws of the same (seed, epoch, row)


@functools.cache
def vader_protected_words() -> frozenset[str]:
    """VADER's lexicon words, negations and boosters, lower case (vaderSentiment is a [train] dependency)."""
    from importlib import resources

    from vaderSentiment import vaderSentiment as vader

    lexicon = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    words = {line.split("\t", 1)[0].lower() for line in lexicon.splitlines() if line.strip()}
    return frozenset(words | {w.lower() for w in vader.NEGATE} | {w.lower() for w in vader.BOOSTER_DICT})


def plural_forms(name: str) -> set[str]:
    """A class name and the plurals the scene texts use ("cross" -> "crosses", "star" -> "stars")."""
    name = name.lower()
    return {name, name + "s", name + "es"}


class TextAugment:
    """``(text, epoch, row index) -> text`` with some unprotected words dropped and commas/full stops jittered."""

    def __init__(self, cfg, class_names: tuple[str, ...] | list[str], seed: int = 0):
        self.word_drop, self.max_drop_fraction, self.punct_prob = cfg.word_drop, cfg.max_drop_fraction, cfg.punct_prob
        self.protected = vader_protected_words() | CONTRAST_WORDS | SPATIAL_WORDS | {
            form for name in class_names for form in plural_forms(name)}
        self.seed = seed

    def is_protected(self, word: str) -> bool:
        core = _EDGE_PUNCT.sub("", word)
        return (not core or core.lower() in self.protected or core.lower().endswith("n't")
                or any(ch.isdigit() for ch in core) or (len(core) > 1 and core.isupper())
                or any(ch in word for ch in "!?:"))

    def __call__(self, text: str, epoch: int, index: int) -> str:
        rng = np.random.default_rng([self.seed, epoch, index, _TEXT_SEED_TAG])
        words = _WORD.findall(text)
        droppable = [i for i, w in enumerate(words) if not self.is_protected(w)]
        budget = int(self.max_drop_fraction * len(words))
        drop = set([i for i in droppable if rng.random() < self.word_drop][:budget])
        kept = [w for i, w in enumerate(words) if i not in drop]
        if self.punct_prob > 0 and kept and rng.random() < self.punct_prob:
            kept = _jitter_punctuation(kept, rng)
        return " ".join(kept) if kept else text


def _jitter_punctuation(words: list[str], rng: np.random.Generator) -> list[str]:
    """Drop one comma, or add one after a plain word, or drop/add the final full stop (never ! or ?)."""
    words = list(words)
    commas = [i for i, w in enumerate(words) if w.endswith(",")]
    plain = [i for i, w in enumerate(words[:-1]) if w[-1:].isalnum()]
    choice = int(rng.integers(3))
    if choice == 0 and commas:
        i = commas[int(rng.integers(len(commas)))]
        words[i] = words[i][:-1]
    elif choice == 1 and plain:
        i = plain[int(rng.integers(len(plain)))]
        words[i] += ","
    elif words[-1].endswith("."):
        words[-1] = words[-1][:-1] or words[-1]
    elif words[-1][-1:].isalnum():
        words[-1] += "."
    return words
