"""A convolution, the element-wise stages after it and a pooling stage, computed band by band.

On a large plane the convolution's output need never exist whole: each band of its rows (from
:func:`~cnnops.engines.numpy_engine.conv.conv_rows`) goes through the element-wise stages in place and
into the pool as soon as the pool's windows have the rows they read, so memory stays near the input,
the output and a few bands. The numbers are those of running the stages one after another, to the
bit: the convolution's bands are its own, the element-wise stages work cell by cell, and pooling
reads the same cells in the same order (:func:`~cnnops.engines.numpy_engine.pool.pool_rows`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnops.engines.numpy_engine.arrays import _F32, _quiet
from cnnops.engines.numpy_engine.conv import band_rows, conv_rows, conv_shape
from cnnops.engines.numpy_engine.elementwise import activation, batch_norm
from cnnops.engines.numpy_engine.pool import pool_rows
from cnnops.model.arithmetic import pool_output_length

#: conv output elements gathered before a round of element-wise steps and pooling: fewer, larger calls,
#: while a round (1 MB) and its pooling temporaries stay in cache and few fresh pages are touched
POOL_BATCH = 1 << 18


def _apply(steps: list[tuple[str, dict[str, Any]]], block: np.ndarray) -> np.ndarray:
    for kind, options in steps:
        if kind == "activation":
            block = activation(options["name"], block, options["options"], inplace=True)
        elif kind == "batch_norm":
            block = batch_norm(block, eps=options["eps"])
        # "copy" (Identity, Dropout): the values pass unchanged
    return block


@_quiet
def conv_chain(x, weight, bias, *, conv: dict[str, Any], steps: list[tuple[str, dict[str, Any]]],
               pool: dict[str, Any]) -> np.ndarray:  # fmt: skip
    """``pool(steps(conv(x)))`` for a 2-D conv (``conv``: its keyword arguments), element-wise ``steps``
    (``("activation", {"name", "options"})``, ``("batch_norm", {"eps"})``, ``("copy", {})``) and a 2-D
    max (values only) or average pool (``pool``: ``mode`` and its keyword arguments)."""
    shape = conv_shape(np.shape(x), np.shape(weight), nd=2, stride=conv["stride"], pads=conv["pads"],
                       dilation=conv["dilation"])  # fmt: skip
    height = shape[-2]
    k, s, p = pool["kernel_size"][0], pool["stride"][0], pool["padding"][0]
    d = pool.get("dilation", (1, 1))[0] if pool["mode"] == "max" else 1
    span = d * (k - 1) + 1
    outs = [pool_output_length(n, kk, ss, pp, dd, pool["ceil_mode"])
            for n, kk, ss, pp, dd in zip(shape[-2:], pool["kernel_size"], pool["stride"], pool["padding"],
                                         pool.get("dilation", (1, 1)) if pool["mode"] == "max" else (1, 1))]  # fmt: skip
    y = np.empty((*shape[:-2], *outs), dtype=_F32)
    if y.size == 0:
        return y
    # the conv's bands (fixed by the shapes) are gathered into rounds; each round's rows are written by the
    # matmul straight into one buffer, go through the element-wise steps in place, and are pooled
    n_c = math.prod(shape[:-2])
    band = band_rows(np.shape(x) if len(np.shape(x)) == 4 else (1, *np.shape(x)), np.shape(weight), list(shape[-2:]),
                     conv["groups"])  # fmt: skip
    per_row = max(1, n_c * shape[-1])
    round_rows = band * max(1, POOL_BATCH // (band * per_row))
    carried: np.ndarray | None = None  # element-wise results the next pool outputs still read
    base = done = 0  # the conv row the rows in hand start at; pool output rows written
    fresh: list[Any] = [None, 0]  # this round's buffer and its first row

    def into(r0: int, r1: int) -> np.ndarray:
        if r0 % round_rows == 0:
            fresh[:] = [np.empty((*shape[:-2], min(round_rows, height - r0), shape[-1]), dtype=_F32), r0]
        return fresh[0][..., r0 - fresh[1] : r1 - fresh[1], :]

    for _, r1, _ in conv_rows(x, weight, bias, nd=2, **conv, into=into):
        if r1 % round_rows and r1 < height:
            continue
        new = _apply(steps, fresh[0])
        if carried is None:
            rows, base = new, fresh[1]
        else:
            rows = np.concatenate([carried, new], axis=-2)
        ready = outs[0] if r1 >= height else min(outs[0], max(0, (r1 + p - span) // s + 1))
        if ready > done:
            pool_rows(rows, base=base, height=height, o0=done, o1=ready, **pool, out=y[..., done:ready, :])
            done = ready
        first = max(0, min(done * s - p, height))  # the first conv row a later output reads
        carried = rows[..., first - base :, :] if first - base < rows.shape[-2] else None
        base = first if carried is not None else r1
    return y
