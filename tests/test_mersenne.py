"""The NumPy MT19937 (cnnops.io.mersenne) against numpy.random.MT19937 in the same state, word for word,
whatever the sizes of the requests (the weights and random inputs rest on it; their values are checked
against torch itself in test_pipeline_vs_torch and test_io)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnops.io import mersenne
from cnnops.io.mersenne import MT19937, seed_key


def native(seed: int) -> np.random.MT19937:
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": seed_key(seed), "pos": 624}}
    return bits


def test_reference_outputs() -> None:
    # the reference implementation's (and std::mt19937's) first outputs for the default seed 5489
    assert MT19937(seed_key(5489)).words(4).tolist() == [3499211612, 581869302, 3890346734, 3586334585]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    sizes=st.lists(
        st.sampled_from([0, 1, 2, 226, 227, 228, 623, 624, 625, 1247, 1248, 1249]) | st.integers(0, 5000), max_size=8
    ),
)
def test_same_words_as_numpy(seed: int, sizes: list[int]) -> None:
    mine, ref = MT19937(seed_key(seed)), native(seed)
    for n in sizes:
        got, want = mine.words(n), ref.random_raw(n)
        assert got.dtype == want.dtype == np.uint64
        np.testing.assert_array_equal(got, want)


def test_big_requests_continue_the_stream_in_numpy_random(monkeypatch) -> None:
    monkeypatch.setattr(mersenne, "NATIVE_ABOVE", 1000)
    monkeypatch.delitem(__import__("sys").modules, "numpy.random", raising=False)
    mine, ref = MT19937(seed_key(7)), native(7)
    for n in (10, 700, 1001, 3, 5000):
        np.testing.assert_array_equal(mine.words(n), ref.random_raw(n))
    assert mine.native is not None


def test_a_big_total_drawn_in_small_blocks_moves_to_numpy_random_at_the_first(monkeypatch) -> None:
    monkeypatch.setattr(mersenne, "NATIVE_ABOVE", 1000)
    monkeypatch.delitem(__import__("sys").modules, "numpy.random", raising=False)
    mine, ref = MT19937(seed_key(9)), native(9)
    np.testing.assert_array_equal(mine.words(300, coming=1200), ref.random_raw(300))
    assert mine.native is not None
    for n in (300, 300, 300):
        np.testing.assert_array_equal(mine.words(n), ref.random_raw(n))
