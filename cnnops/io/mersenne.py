"""MT19937, the generator behind ``torch.manual_seed``, in whole-array NumPy operations.

Drawing a network's default weights needs a few thousand to a few hundred thousand words, and
``numpy.random`` — whose ``MT19937`` gives them at C speed — costs 15–20 ms to import (it brings
``secrets``, ``hashlib`` and every bit generator), more than the drawing itself. :class:`MT19937`
computes small requests here and hands its state to ``numpy.random.MT19937`` for big ones, so the
words are the same either way.

The generator is a sequence ``x[k + 624] = x[k + 397] ^ twist(x[k], x[k + 1])``: a block of up to 227
new words depends only on words already known, so each block is a handful of array operations.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

N, M = 624, 397
STEP = N - M  # new words per block: x[k + 624] reads x[k + 397], 227 words back
# above this many words in one request, importing numpy.random pays for itself (its C loop draws
# ~1 ns a word; the blocks here ~30 ns)
NATIVE_ABOVE = 1 << 19


def seed_key(seed: int) -> np.ndarray:
    """Knuth's init_genrand, as ``torch.manual_seed(seed)`` runs it (on the low 32 bits of the seed)."""
    import numpy as np

    key = np.empty(N, dtype=np.uint32)
    s = seed & 0xFFFFFFFF
    key[0] = s
    for i in range(1, N):
        s = (1812433253 * (s ^ (s >> 30)) + i) & 0xFFFFFFFF
        key[i] = s
    return key


class MT19937:
    """The words of MT19937 from a key of 624 words and a position in it, as
    ``numpy.random.MT19937`` with ``state = {"key": key, "pos": pos}`` gives them (``pos = 624``: the
    next word starts a new generation, as after seeding).

    >>> import numpy as np
    >>> MT19937(seed_key(5489)).words(3).tolist()  # the reference implementation's first outputs
    [3499211612, 581869302, 3890346734]
    """

    def __init__(self, key: np.ndarray, pos: int = N):
        self.key = key  # uint32, the current generation (untempered)
        self.pos = pos
        self.native: np.random.MT19937 | None = None  # numpy.random.MT19937 once a big request has moved the stream there

    def words(self, n: int, *, coming: int = 0) -> np.ndarray:
        """The next ``n`` 32-bit words, as uint64 (as ``random_raw`` returns them). ``coming``: the words
        a caller drawing in blocks will ask for in all, this block's included (a big total moves the
        stream to ``numpy.random`` at once, however small the blocks)."""
        import numpy as np

        if self.native is None and (max(n, coming) > NATIVE_ABOVE or "numpy.random" in sys.modules):
            bits = np.random.MT19937()
            bits.state = {"bit_generator": "MT19937", "state": {"key": self.key, "pos": self.pos}}
            self.native = bits
        if self.native is not None:
            return self.native.random_raw(n)
        if n <= 0:
            return np.empty(0, dtype=np.uint64)
        # with x[0:624] the key, the words are x[pos], x[pos + 1], …; after them the key is the
        # generation holding the last word, and pos (1 … 624) the index after it
        stop = self.pos + n
        last = (stop - 1) // N
        seq = np.empty(N * (last + 1), dtype=np.uint32)
        seq[:N] = self.key
        _extend(seq, N, len(seq))
        words = _temper(seq[self.pos : stop].copy())
        self.key = seq[N * last :].copy()
        self.pos = stop - N * last
        return words.astype(np.uint64)


def _extend(seq: np.ndarray, start: int, stop: int) -> None:
    """Fill ``seq[start:stop]`` by the recurrence, ``seq[:start]`` (at least 624 words) being known;
    ``stop - start`` is whole generations of 624 words.

    A generation at a time: the twist of each old pair ``(x[j], x[j + 1])`` is known for all but the
    last word up front (one pass over the old generation), then the new words are it XORed with the
    word 227 back, in three blocks (the first reads old words, the others new ones) — eleven array
    operations a generation rather than eight a block of 227."""
    import numpy as np

    for k in range(start, stop, N):
        old, new = seq[k - N : k], seq[k : k + N]
        y = old[:-1] & 0x80000000
        y |= old[1:] & 0x7FFFFFFF
        twist = y >> 1
        y &= 1
        y *= 0x9908B0DF
        twist ^= y  # twist[j] for j < 623; the last reads new[0]
        new[:STEP] = twist[:STEP]
        new[:STEP] ^= old[M:]
        np.bitwise_xor(twist[STEP : 2 * STEP], new[:STEP], out=new[STEP : 2 * STEP])
        np.bitwise_xor(twist[2 * STEP :], new[STEP : N - 1 - STEP], out=new[2 * STEP : N - 1])
        last = (int(old[N - 1]) & 0x80000000) | (int(new[0]) & 0x7FFFFFFF)
        new[N - 1] = int(new[N - 1 - STEP]) ^ (last >> 1) ^ (0x9908B0DF if last & 1 else 0)


def _temper(y: np.ndarray) -> np.ndarray:
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return y
