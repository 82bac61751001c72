"""The VADER ground truth (Hutto & Gilbert 2014, MIT licence) as a 0-10 text-score dataset.

23,703 sentences from four domains, each rated -4..4 by >= 20 people. The files ship only in
the ``vadersentiment==3.3.2`` source distribution, so we fetch that sdist with pip at prepare
time into a cache (no third-party text is committed) and map the mean rating to 0-10 with
``1.25 * (rating + 4)``. Each domain gets its own fixed, seeded 80/10/10 train/val/test split.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import DataError
from .manifest import Sample, read_manifest, write_manifest

SDIST_REQUIREMENT = "vadersentiment==3.3.2"
INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"
# Ground-truth file prefix -> our domain name.
DOMAIN_FILES = {
    "tweets": "tweets",
    "movieReviewSnippets": "movies",
    "amazonReviewSnippets": "amazon",
    "nytEditorialSnippets": "nyt",
}
DOMAINS = tuple(DOMAIN_FILES.values())
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
MANIFEST_NAME = "vader.jsonl"
META_NAME = "vader.meta.json"


def rating_to_score(rating: float) -> float:
    """Map a VADER mean rating in [-4, 4] to the product's 0-10 score."""
    return 1.25 * (rating + 4.0)


def fetch_sdist(cache: Path) -> Path:
    """Download the vadersentiment source distribution with pip into ``cache`` (kept for reuse)."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("vader[sS]entiment-3.3.2.tar.gz"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
           SDIST_REQUIREMENT, "-d", str(cache)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob("vader[sS]entiment-3.3.2.tar.gz"))
    if proc.returncode != 0 or not found:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "is ignored" not in ln]
        reason = lines[-1] if lines else f"pip exited {proc.returncode}"
        raise DataError(f"could not download the {SDIST_REQUIREMENT} sdist with pip: {reason}")
    return found[0]


def parse_ground_truth(text: str, domain: str, source: str) -> list[Sample]:
    """Parse one ``*_GroundTruth.txt`` (``id<TAB>mean<TAB>text``, CRLF) into text-only samples."""
    samples = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DataError(f"{source}:{line_no}: expected 'id<TAB>mean<TAB>text'")
        row_id, mean, sentence = parts
        try:
            rating = float(mean)
        except ValueError:
            raise DataError(f"{source}:{line_no}: mean rating {mean!r} is not a number") from None
        if not -4.0 <= rating <= 4.0:
            raise DataError(f"{source}:{line_no}: mean rating {rating} outside [-4, 4]")
        samples.append(Sample(image=None, text=sentence.strip(), score=rating_to_score(rating),
                              domain=domain, id=f"{domain}:{row_id.strip()}"))
    return samples


def read_sdist(sdist: Path) -> dict[str, list[Sample]]:
    """Extract the four ground-truth files from the sdist (tar.gz inside tar.gz), in memory."""
    try:
        with tarfile.open(sdist, "r:gz") as outer:
            member = next((m for m in outer.getmembers() if m.name.endswith(INNER_ARCHIVE)), None)
            if member is None:
                raise DataError(f"{sdist}: no {INNER_ARCHIVE} inside")
            inner_bytes = outer.extractfile(member).read()
        by_domain: dict[str, list[Sample]] = {}
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
            for m in inner.getmembers():
                name = Path(m.name).name
                prefix = name.removesuffix("_GroundTruth.txt")
                if name.endswith("_GroundTruth.txt") and prefix in DOMAIN_FILES:
                    text = inner.extractfile(m).read().decode("utf-8")
                    domain = DOMAIN_FILES[prefix]
                    by_domain[domain] = parse_ground_truth(text, domain, f"{sdist.name}:{name}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{sdist}: unreadable archive ({exc})") from None
    missing = sorted(set(DOMAINS) - set(by_domain))
    if missing:
        raise DataError(f"{sdist}: ground-truth files missing for {missing}")
    return by_domain


def split_domain(samples: list[Sample], domain: str, seed: int) -> list[Sample]:
    """Assign train/val/test (80/10/10) by a shuffle seeded with (seed, domain): fixed and repeatable."""
    order = list(range(len(samples)))
    random.Random(f"vader-split:{seed}:{domain}").shuffle(order)
    n_train = round(SPLIT_FRACTIONS[0] * len(samples))
    n_val = round(SPLIT_FRACTIONS[1] * len(samples))
    split_of = {}
    for rank, index in enumerate(order):
        split_of[index] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return [
        Sample(image=None, text=s.text, score=s.score, domain=s.domain, id=s.id, split=split_of[i])
        for i, s in enumerate(samples)
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_vader(out_dir: str | Path, seed: int = 0) -> Path:
    """Build ``out_dir/vader.jsonl`` (all rows, each with its split) and ``out_dir/<split>.jsonl``.
    A no-op when already built with the same seed. Returns the path of ``vader.jsonl``."""
    out_dir = Path(out_dir)
    manifest, meta_path = out_dir / MANIFEST_NAME, out_dir / META_NAME
    if manifest.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            meta = {}
        complete = all((out_dir / f"{split}.jsonl").is_file() for split in SPLITS)
        if complete and meta.get("seed") == seed and meta.get("source") == SDIST_REQUIREMENT:
            return manifest
    sdist = fetch_sdist(out_dir / "sdist")
    rows: list[Sample] = []
    for domain, samples in read_sdist(sdist).items():
        rows.extend(split_domain(samples, domain, seed))
    for split in SPLITS:  # one manifest per split, ready for --data / --val-data
        write_manifest(out_dir / f"{split}.jsonl", [r for r in rows if r.split == split])
    write_manifest(manifest, rows)
    counts = Counter(f"{s.domain}/{s.split}" for s in rows)
    meta = {"source": SDIST_REQUIREMENT, "sdist_sha256": _sha256(sdist), "seed": seed,
            "rows": len(rows), "counts": dict(sorted(counts.items())),
            "score_mapping": "1.25 * (mean_rating + 4)"}
    write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    return manifest


def load_vader(vader: str | Path, split: str | None = None, domains: tuple[str, ...] = DOMAINS) -> list[Sample]:
    """Read a prepared VADER manifest (a folder or the .jsonl itself), optionally one split."""
    path = Path(vader)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"{path}: VADER manifest not found; run 'edge-clipguard data vader' first")
    rows = read_manifest(path)
    return [r for r in rows if (split is None or r.split == split) and r.domain in domains]
