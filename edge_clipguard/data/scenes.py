"""Scenes with text-referred objects: the data that makes fusion necessary.

Each scene is a crop of a real photo (or, with ``SceneSpec(background="procedural")``, a
background we draw ourselves: see ``procedural.py``) with 1-6 rendered objects of several classes pasted at
exact boxes (varied size, aspect, colour, rotation; partial occlusion by patches and other
objects; non-object scribbles as distractors). Its text is a VADER sentence (the score target)
led by a mention of one class present in the image; the target boxes are only the instances of
that class. An image-only model cannot know which class to box; a text-only model cannot
localise. Sentences come from the VADER split of the same name, so test scenes hold out the
text scores too. Sample ``i`` of a split depends only on (seed, split, i): seeded, repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import atomic_directory
from ..boxes import box_iou_xyxy
from ..errors import DataError
from .backgrounds import load_backgrounds
from .manifest import Sample, TextRef, write_manifest
from .procedural import procedural_background, procedural_patch
from .shapes import SHAPE_CLASSES, plural, render_sprite
from .shifts import apply_shift, check_shift, shifted_spec, shifted_split_name
from .vader import SPLITS, load_vader

# Mentions lead the text so truncation to the model's max length never cuts them off.
TEMPLATES = (
    "About the {cls}: {sentence}",
    "The {cls}. {sentence}",
    "Look at the {cls}: {sentence}",
    "Re the {cls} - {sentence}",
    "This one is about the {cls}. {sentence}",
)
_SPLIT_CODE = {name: code for code, name in enumerate(SPLITS)}
BACKGROUNDS = ("photo", "procedural")


@dataclass(frozen=True)
class SceneSpec:
    """Ranges the generator draws from (pixels are of the final image)."""

    min_side: int = 256
    max_side: int = 448
    max_objects: int = 6
    min_object_frac: float = 0.08  # longest object side as a fraction of the shorter image side
    max_object_frac: float = 0.35
    max_overlap_iou: float = 0.25
    jpeg_quality: int = 90
    background: str = "photo"  # "photo": crops of packaged photos; "procedural": drawn here (committable)
    png_colors: int = 0  # > 0: PNGs become palette images of this many colours (~2x smaller, for committed sets)
    distractors: tuple[int, int] = (0, 4)  # scribbles per image, drawn from [low, high)
    occlusion_prob: float = 0.25  # chance that each object gets a patch over part of it


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    hue, sat, val = rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0)
    i, f = int(hue * 6) % 6, hue * 6 - int(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    rgb = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]
    return tuple(int(255 * c) for c in rgb)


def _background(rng: np.random.Generator, width: int, height: int, kind: str = "photo") -> Image.Image:
    if kind == "procedural":
        return procedural_background(rng, width, height)
    if kind != "photo":
        raise DataError(f"background must be one of {BACKGROUNDS}, got {kind!r}")
    photos = load_backgrounds()
    photo = photos[int(rng.integers(len(photos)))]
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.5, 1.0)
    cw = max(32, int(min(pw, ph * width / height) * scale))
    ch = max(32, int(cw * height / width))
    x0, y0 = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, max(1, ph - ch + 1)))
    crop = Image.fromarray(photo[y0:y0 + ch, x0:x0 + cw])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return crop.resize((width, height), Image.BILINEAR)


def _draw_distractors(image: Image.Image, rng: np.random.Generator, count: tuple[int, int] = (0, 4)) -> None:
    """Scribbles and strokes that are not any class: the box head must learn to ignore them."""
    draw = ImageDraw.Draw(image)
    w, h = image.size
    for _ in range(int(rng.integers(*count))):
        points = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(int(rng.integers(2, 5)))]
        draw.line(points, fill=_random_color(rng), width=int(rng.integers(2, 6)))


def _occlude(image: Image.Image, box: tuple[float, ...], rng: np.random.Generator, kind: str = "photo") -> None:
    """Cover part of an object (at most ~30% of its area) with a patch of another background.

    Textured patches only: a flat-colour rectangle would look exactly like the ``square`` class."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    pw, ph = max(2, int(bw * rng.uniform(0.2, 0.5))), max(2, int(bh * rng.uniform(0.2, 0.6)))
    side = int(rng.integers(4))
    px = int(x1 - pw / 2) if side == 0 else int(x2 - pw / 2) if side == 1 else int(rng.uniform(x1, x2 - pw))
    py = int(y1 - ph / 2) if side == 2 else int(y2 - ph / 2) if side == 3 else int(rng.uniform(y1, y2 - ph))
    patch = procedural_patch(rng, pw, ph) if kind == "procedural" else _background(rng, pw, ph, kind)
    image.paste(patch, (px, py))


def render_scene(rng: np.random.Generator, spec: SceneSpec = SceneSpec()) -> tuple[Image.Image, list, list]:
    """Render one image. Returns (RGB image, boxes x1y1x2y2 in pixels, class indices) of all objects."""
    width, height = (int(v) for v in rng.integers(spec.min_side, spec.max_side + 1, size=2))
    image = _background(rng, width, height, spec.background)
    _draw_distractors(image, rng, spec.distractors)
    n_objects = int(rng.integers(1, spec.max_objects + 1))
    # At least two classes whenever there are two objects, so the text must pick one.
    n_classes = 1 if n_objects == 1 else int(rng.integers(2, min(n_objects, 4) + 1))
    classes = rng.choice(len(SHAPE_CLASSES), size=n_classes, replace=False)
    object_classes = list(classes) + list(rng.choice(classes, size=n_objects - n_classes))
    boxes, labels = [], []
    short = min(width, height)
    for cls in object_classes:
        for _attempt in range(30):
            longest = rng.uniform(spec.min_object_frac, spec.max_object_frac) * short
            aspect = rng.uniform(0.6, 1.6)
            ow, oh = (longest, longest / aspect) if aspect >= 1 else (longest * aspect, longest)
            angle = float(rng.uniform(-35, 35)) if rng.random() < 0.6 else 0.0
            sprite = render_sprite(SHAPE_CLASSES[int(cls)], int(ow), int(oh), _random_color(rng), angle, rng)
            sw, sh = sprite.size
            if sw >= width or sh >= height:
                continue
            x, y = int(rng.integers(0, width - sw)), int(rng.integers(0, height - sh))
            box = (float(x), float(y), float(x + sw), float(y + sh))
            if box_iou_xyxy(np.asarray([box]), np.asarray(boxes)).max(initial=0.0) <= spec.max_overlap_iou:
                image.paste(sprite, (x, y), sprite)
                boxes.append(box)
                labels.append(int(cls))
                break
    for box in boxes:
        if rng.random() < spec.occlusion_prob:
            _occlude(image, box, rng, spec.background)
    return image, boxes, labels


def compose_prefix(class_name: str, count: int, rng: np.random.Generator) -> str:
    """The mention that leads a scene's text ("About the stars: "); the sentence follows it."""
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return template.format(cls=plural(class_name) if count > 1 else class_name, sentence="")


def compose_text(sentence: str, class_name: str, count: int, rng: np.random.Generator) -> str:
    return compose_prefix(class_name, count, rng) + sentence


def _save(image: Image.Image, path: Path, spec: SceneSpec) -> None:
    """JPEG (quality from the spec) or PNG (truecolour, or a palette of ``spec.png_colors``), by suffix."""
    if path.suffix.lower() == ".png":
        if spec.png_colors > 0:
            image = image.quantize(spec.png_colors, dither=Image.Dither.NONE)
        image.save(path, optimize=True)
    else:
        image.save(path, quality=spec.jpeg_quality)


def make_scene_sample(index: int, split: str, seed: int, sentences: list[Sample], image_path: Path,
                      spec: SceneSpec = SceneSpec(), text_by_ref: bool = False, shift: str | None = None) -> Sample:
    """Render scene ``index`` of ``split``, save it to ``image_path`` (.jpg or .png) and return its row.

    ``text_by_ref``: the row references its VADER sentence by id (``text_ref``) instead of holding
    the text and score, so the manifest can be committed without third-party text. ``shift``: one of
    ``shifts.SHIFTS`` (a test-time distribution shift), None for the normal scene."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
    image, boxes, labels = render_scene(rng, shifted_spec(spec, shift))
    image = apply_shift(image, shift, seed, _SPLIT_CODE[split], index)
    name = shifted_split_name(split, shift)
    present = sorted(set(labels))
    referred = int(present[int(rng.integers(len(present)))])
    target = [(b, c) for b, c in zip(boxes, labels) if c == referred]
    sentence = sentences[int(rng.integers(len(sentences)))]
    prefix = compose_prefix(SHAPE_CLASSES[referred], len(target), rng)
    _save(image, image_path, spec)
    return Sample(
        image=str(image_path), text=prefix + sentence.text, score=sentence.score,
        boxes=tuple(b for b, _ in target), labels=tuple(c for _, c in target),
        domain=sentence.domain, id=f"scenes:{name}:{index:06d}", split=split, text_id=sentence.id,
        text_ref=TextRef(source="vader", id=sentence.id, prefix=prefix) if text_by_ref else None,
    )


def generate_scenes(out_dir: str | Path, count: int, seed: int, split: str, vader: str | Path,
                    spec: SceneSpec = SceneSpec(), shift: str | None = None) -> Path:
    """Write ``out_dir/images/<split>/*.jpg`` and ``out_dir/<split>.jsonl`` (``<split>-<shift>`` for a shifted
    set, see ``shifts.py``); returns the manifest path.

    The image folder is built aside and moved into place, then the manifest is written: an
    interrupted run leaves no half-written split.
    """
    if split not in SPLITS:
        raise DataError(f"--split must be one of {SPLITS}, got {split!r}")
    check_shift(shift)
    if count < 1:
        raise DataError(f"--count must be >= 1, got {count}")
    sentences = load_vader(vader, split=split)
    if not sentences:
        raise DataError(f"{vader}: no VADER sentences in split {split!r}")
    out_dir = Path(out_dir)
    name = shifted_split_name(split, shift)
    final_images = out_dir / "images" / name
    rows = []
    with atomic_directory(final_images) as tmp_images:
        for index in range(count):
            rows.append(make_scene_sample(index, split, seed, sentences, tmp_images / f"{index:06d}.jpg", spec,
                                          shift=shift))
    rows = [
        Sample(**{**r.__dict__, "image": str(final_images / Path(r.image).name)}) for r in rows
    ]
    return write_manifest(out_dir / f"{name}.jsonl", rows)
