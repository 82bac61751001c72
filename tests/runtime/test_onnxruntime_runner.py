"""ONNX Runtime runner: which CUDA device-buffer slots are freed (pure; CUDA itself needs a GPU)."""

from edge_clipguard.runtime.backends.onnxruntime_runner import slots_to_evict


def test_plain_slots_beyond_the_limit_are_freed_oldest_first():
    slots = [(1, False), (2, False), (3, False), (4, False)]
    assert slots_to_evict(slots, max_plain=2) == [1, 2]


def test_slots_with_a_captured_cuda_graph_are_never_freed():
    slots = [(1, True), (2, True), (3, False), (5, False), (7, False)]
    assert slots_to_evict(slots, max_plain=1) == [3, 5]


def test_nothing_is_freed_within_the_limit():
    assert slots_to_evict([(1, True), (2, False)], max_plain=8) == []
