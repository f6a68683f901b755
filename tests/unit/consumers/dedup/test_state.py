"""The dedup state: bounded by a time window and a maximum size."""

from consumers.dedup.state import DedupState, changelog_key, parse_changelog_key

A = ("order", 0)
B = ("idea", 3)


def d(n: int) -> bytes:
    return n.to_bytes(16, "big")


def test_window_eviction_removes_only_expired_entries_oldest_first():
    state = DedupState(window_ms=1000, max_entries=100)
    a, b = state.partition(A), state.partition(B)
    state.add(a, d(1), 0)
    state.add(b, d(2), 500)
    state.add(a, d(3), 900)
    assert state.evict(now_ms=1000) == []  # 0 is exactly at the horizon: kept
    assert state.evict(now_ms=1001) == [(A, d(1))]
    assert d(1) not in a and d(3) in a and state.size == 2
    assert sorted(state.evict(now_ms=2000)) == sorted([(B, d(2)), (A, d(3))])
    assert state.size == 0


def test_max_entries_evicts_the_oldest_across_partitions():
    state = DedupState(window_ms=10_000, max_entries=3)
    a, b = state.partition(A), state.partition(B)
    state.add(a, d(1), 10)
    state.add(b, d(2), 5)
    state.add(a, d(3), 20)
    state.add(b, d(4), 30)
    state.add(a, d(5), 40)
    removed = state.evict(now_ms=50)
    assert removed == [(B, d(2)), (A, d(1))]
    assert state.size == 3 and set(a) == {d(3), d(5)} and set(b) == {d(4)}


def test_load_keeps_the_window_sorted_and_replaces_the_partition():
    state = DedupState(window_ms=100, max_entries=10)
    state.add(state.partition(A), d(9), 1)
    state.add(state.partition(B), d(8), 990)
    # horizon = 1000 - 100 = 900: 800 and 899 are outside the window.
    loaded = state.load(A, {d(1): 950, d(2): 800, d(3): 899, d(4): 900}, now_ms=1000)
    assert loaded == 2 and state.size == 3
    assert list(state.partition(A).items()) == [(d(4), 900), (d(1), 950)]  # oldest first, d(9) replaced


def test_drop_and_discard_keep_the_size_right():
    state = DedupState(window_ms=100, max_entries=10)
    a, b = state.partition(A), state.partition(B)
    for i in range(3):
        state.add(a, d(i), i)
    state.add(b, d(7), 1)
    state.discard(a, d(1))
    state.discard(a, d(1))  # absent: no change
    assert state.size == 3
    state.drop([A, ("trade", 5)])
    assert state.size == 1 and A not in state.partitions


def test_changelog_key_round_trip():
    key = changelog_key("intent_action", 17, d(42))
    assert key == b"intent_action|17|" + d(42).hex().encode()
    assert parse_changelog_key(key) == (("intent_action", 17), d(42))
