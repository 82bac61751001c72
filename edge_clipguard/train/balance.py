"""``train --balance``: class-balanced sampling, for imported data whose classes are far from equally common.

Each training row belongs to one group: the class its boxes are (a row's boxes are the class its text names), or
"text only" for a row without boxes. Rows are drawn with replacement with weight 1 / (rows in their group), so
every group is drawn about equally often per epoch, however rare; an epoch keeps its length. The draw has its
own seeded generator per epoch, so a run and its resumption sample the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def row_groups(samples: Sequence) -> list[int | None]:
    """Each sample's group: the label of its first box, or None for a row without boxes."""
    return [int(s.labels[0]) if getattr(s, "labels", None) else None for s in samples]


def balanced_weights(groups: Sequence[int | None]) -> np.ndarray:
    """Sampling weight of each row: 1 / the number of rows in its group (the weights of a group sum to 1)."""
    counts = Counter(groups)
    return np.asarray([1.0 / counts[g] for g in groups], dtype=np.float64)
