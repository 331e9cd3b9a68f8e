from hypothesis import given
from hypothesis import strategies as st

from webrtc_secure.replay import ReplayWindow


def test_fresh_then_replayed() -> None:
    w = ReplayWindow(64)
    assert w.is_fresh(10)
    w.commit(10)
    assert not w.is_fresh(10)
    assert w.is_fresh(9)
    w.commit(9)
    assert not w.is_fresh(9)
    assert w.is_fresh(11)


def test_too_old_is_refused() -> None:
    w = ReplayWindow(64)
    w.commit(1000)
    assert not w.is_fresh(1000 - 64)
    assert w.is_fresh(1000 - 63)


def test_large_jump_clears_window() -> None:
    w = ReplayWindow(128)
    w.commit(5)
    w.commit(5 + 10_000)
    assert w.is_fresh(5 + 10_000 - 1)
    assert not w.is_fresh(5)


def test_check_without_commit_leaves_no_trace() -> None:
    w = ReplayWindow(128)
    w.commit(50)
    assert w.is_fresh(60)
    assert w.highest == 50
    assert w.is_fresh(60)


@given(st.lists(st.integers(min_value=0, max_value=2**48 - 1), max_size=200), st.integers(1, 256))
def test_matches_reference_model(indices: list[int], size: int) -> None:
    w = ReplayWindow(size)
    seen: set[int] = set()
    highest = -1
    for i in indices:
        expected = i not in seen and (i > highest or highest - i < size)
        assert w.is_fresh(i) == expected
        if expected:
            w.commit(i)
            seen.add(i)
            highest = max(highest, i)
