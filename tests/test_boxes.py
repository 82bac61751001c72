import numpy as np

from edge_clipguard.boxes import box_iou, box_iou_xyxy


def test_pairwise_iou_equals_the_matrix_iou_on_random_and_degenerate_boxes():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 50, size=(40, 4))
    boxes = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])], 1)
    boxes[:5, 2] = boxes[:5, 0]  # zero width
    boxes[5:8] = boxes[5:8, [2, 3, 0, 1]]  # inverted corners
    matrix = box_iou_xyxy(boxes, boxes)
    pairs = np.asarray([[box_iou(a, b) for b in boxes.tolist()] for a in boxes.tolist()])
    np.testing.assert_allclose(pairs, matrix, atol=1e-12)
    assert matrix[0].max() == 0.0 and pairs[9, 9] == 1.0
