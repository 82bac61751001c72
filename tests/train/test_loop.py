from edge_clipguard.train.loop import warmup_cosine


def test_warmup_then_cosine_to_zero():
    values = [warmup_cosine(s, 4, 20) for s in range(21)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0]
    assert values[4] == 1.0 and abs(values[20]) < 1e-9
    assert all(a >= b for a, b in zip(values[4:], values[5:]))
