from simulators.hti.ratelimit import FixedWindowLimiter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_fixed_window_per_key():
    clock = Clock()
    limiter = FixedWindowLimiter(clock=clock)
    assert [limiter.check("a", 3) for _ in range(3)] == [None, None, None]
    clock.now += 20.2
    assert limiter.check("a", 3) == 40  # seconds until the window opened at 1000 ends
    assert limiter.check("b", 3) is None  # other codes have their own budget
    clock.now += 39.0
    assert limiter.check("a", 3) == 1  # never 0
    clock.now += 1.0
    assert limiter.check("a", 3) is None  # a new window


def test_rejected_requests_do_not_count():
    clock = Clock()
    limiter = FixedWindowLimiter(clock=clock)
    limiter.check("a", 1)
    for _ in range(10):
        assert limiter.check("a", 1) is not None
    clock.now += 60
    assert limiter.check("a", 1) is None
    assert limiter.check("a", 1) is not None
