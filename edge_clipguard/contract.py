"""Names and constants that training, export and the runtime must agree on.

Export writes these into the bundle manifest; the runtime reads them back. Defined once
here (no torch import) so the lean runtime can import them too.
"""

from __future__ import annotations

# Graph inputs, in order. input_ids/attention_mask: int64 [batch, text_length], text_length at most
# max_text_length; pixel_values: float32 [batch, 3, image_size, image_size], letterboxed and normalised.
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
PIXEL_VALUES = "pixel_values"
INPUT_NAMES = (INPUT_IDS, ATTENTION_MASK, PIXEL_VALUES)

# Graph outputs, in order. score: float32 [batch] in [SCORE_MIN, SCORE_MAX];
# boxes: float32 [batch, top_k, 4] as x1,y1,x2,y2 in letterboxed-input pixels;
# confidences: float32 [batch, top_k] in [0, 1]; labels: int64 [batch, top_k] class index.
SCORE = "score"
BOXES = "boxes"
CONFIDENCES = "confidences"
LABELS = "labels"
OUTPUT_NAMES = (SCORE, BOXES, CONFIDENCES, LABELS)

# The artifact cut in two (schema 3, ``Artifact.parts``): a text graph (input_ids, attention_mask -> text_features)
# and a fusion graph (text_features, attention_mask, pixel_values -> the outputs above). text_features: float32
# [batch, text_length, feature_dim], the projected text tokens the fusion attends to; a row's values at its real
# tokens do not depend on the padding, so the runtime computes them once per text and keeps them.
TEXT_FEATURES = "text_features"
TEXT_PART_INPUTS = (INPUT_IDS, ATTENTION_MASK)
FUSION_PART_INPUTS = (TEXT_FEATURES, ATTENTION_MASK, PIXEL_VALUES)

# The symbolic axes of the exported graph. The text axis is dynamic, so a short query runs at a short length:
# the runtime pads a batch to the smallest of the manifest's ``text_lengths`` buckets that holds its longest
# text (padding never changes a result: every attention and pooling over text is masked).
BATCH_AXIS = "batch"
TEXT_AXIS = "text_length"
MIN_TEXT_BUCKET = 8


def text_buckets(max_text_length: int) -> tuple[int, ...]:
    """Powers of two from MIN_TEXT_BUCKET up to, and always ending with, ``max_text_length`` (64: 8, 16, 32, 64).
    Few lengths keep the number of shapes a backend compiles (OpenVINO) or captures (CUDA graphs) small."""
    buckets = []
    length = MIN_TEXT_BUCKET
    while length < max_text_length:
        buckets.append(length)
        length *= 2
    return (*buckets, max_text_length)


SCORE_MIN = 0.0
SCORE_MAX = 10.0

# Pixel normalisation of the EfficientNet-Lite ImageNet weights (TF-style: x/127.5 - 1);
# checked in tests/model: they give the higher ImageNet confidence than the torchvision stats.
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)
# Grey used for letterbox padding, so padding normalises to ~0.
LETTERBOX_FILL = (128, 128, 128)

# How the letterbox resizes an image (manifest ``preprocess.resize``, ModelConfig ``resize``): the model is
# fed the pixels of the method it was trained with. "opencv": cv2.resize, bilinear, or pixel-area averaging
# when shrinking more than 2x; SIMD, ~7x faster than Pillow on a 320 px scene. "pillow-bilinear": Pillow's
# antialiased bilinear, what bundles and checkpoints made before the "resize" field was added were trained on.
RESIZE_OPENCV = "opencv"
RESIZE_PILLOW = "pillow-bilinear"
RESIZE_METHODS = (RESIZE_OPENCV, RESIZE_PILLOW)
DEFAULT_RESIZE = RESIZE_OPENCV
LEGACY_RESIZE = RESIZE_PILLOW  # a manifest or checkpoint without the field
