"""PyTorch's default initialisation stream, number for number, without importing torch.

``torch.manual_seed(seed)`` seeds an MT19937 generator the way Knuth's ``init_genrand`` does;
:class:`Random` reads its words from :class:`cnnops.io.generators.TorchStream` (the stream the input
generators use) and turns them into float32 uniforms as PyTorch's CPU kernel does, including whether
that kernel fuses the multiply-add.
"""

from __future__ import annotations

import math

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32
from cnnops.io.generators import TorchStream, machine


def _torch_fuses_multiply_add() -> bool:
    """Whether PyTorch's CPU kernels on this machine evaluate ``x * span + from`` as one fused
    multiply-add. The AVX2 and AVX-512 builds of its kernels do (one rounding); the baseline x86
    build (CPUs without AVX2, or ``ATEN_CPU_CAPABILITY=default``) multiplies and adds separately."""
    import os

    if machine().lower() not in ("x86_64", "amd64", "x86", "i386", "i686"):
        return True  # every aarch64 CPU has FMA and its builds contract it
    if os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower() == "default":
        return False
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
    return bool(features.get("AVX2") and features.get("FMA3"))


class Random:
    """PyTorch's default initialisation stream without torch: ``torch.Generator().manual_seed(seed)``
    followed by ``tensor.uniform_(-bound, bound, generator=g)`` on CPU float32, number for number.

    PyTorch draws one 32-bit MT19937 word per float32 element (serially, whatever the size), keeps its
    low 24 bits as ``u = k / 2**24`` and returns ``u * (to - from) + from`` in float32, mapping a result
    equal to ``to`` back to ``from``.

    >>> Random(0).uniform((3,), 1.0).tolist()  # torch.empty(3).uniform_(-1, 1, generator=...manual_seed(0))
    [-0.007486820220947266, 0.5364435911178589, -0.8230451345443726]
    """

    fused = _torch_fuses_multiply_add()

    def __init__(self, seed: int):
        self.stream = TorchStream(seed)  # the words of torch.manual_seed(seed)'s generator

    def uniform(self, shape: tuple[int, ...], bound: float) -> np.ndarray:
        out = np.empty(math.prod(shape), dtype=_F32)
        low, high = _F32(-bound), _F32(bound)
        span = high - low
        for start in range(0, out.size, 1 << 13):  # blocks: their uint64 words (64 KiB) stay under glibc's mmap threshold
            y = out[start : start + (1 << 13)]
            words = self.stream.words(y.size, coming=out.size - start)
            y[...] = np.bitwise_and(words, 0xFFFFFF, out=words)
            if self.fused:
                # u·span + low = high·(2u − 1) exactly, and 2u − 1 = k·2⁻²³ − 1 is a float32:
                # one correctly rounded float32 product is exactly the fused multiply-add
                y *= _F32(2.0**-23)
                y -= _F32(1)
                y *= high
            else:
                y *= _F32(2.0**-24)
                y *= span
                y += low
            y[y == high] = low
        return out.reshape(shape)
