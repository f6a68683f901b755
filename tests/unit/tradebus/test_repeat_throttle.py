from tradebus.observability import RepeatThrottle


def test_first_passes_then_one_per_interval_with_the_count_held_back():
    now = [100.0]
    throttle = RepeatThrottle(interval_s=10.0, clock=lambda: now[0])
    assert throttle.allow("down") == 0
    assert [throttle.allow("down") for _ in range(5)] == [None] * 5
    assert throttle.allow("other") == 0  # keys are independent
    now[0] += 10.0
    assert throttle.allow("down") == 5
    assert throttle.allow("down") is None
    now[0] += 30.0
    assert throttle.allow("down") == 1


def test_suffix_says_how_many_were_held_back():
    now = [0.0]
    throttle = RepeatThrottle(interval_s=10.0, clock=lambda: now[0])
    assert throttle.suffix("x") == ""
    assert throttle.suffix("x") is None and throttle.suffix("x") is None
    now[0] = 11.0
    assert throttle.suffix("x") == " (2 more like it held back)"
