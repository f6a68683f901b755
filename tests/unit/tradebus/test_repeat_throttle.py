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
