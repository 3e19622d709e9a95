"""PyTorch's output-length formulas, one spatial dimension at a time, with their worked steps.

Each function returns a :class:`Formula`: the result and how it was reached with the numbers
substituted, so the CLI can show *why* a layer outputs the size it does.

>>> conv_length(224, kernel=11, stride=4, padding=2).result
55
>>> pool_length(2, kernel=3, stride=3, padding=0, dilation=1, ceil_mode=True).result
1
"""

from __future__ import annotations

import math

from cnnops.records import record


@record(frozen=True)
class Formula:
    """How one output length is computed: ``expression = steps = result`` plus a remark."""

    dim: str
    expression: str
    steps: str
    result: int
    note: str = ""

    def __str__(self) -> str:
        return f"{self.dim}: {self.expression} = {self.steps}"

    def with_dim(self, dim: str) -> Formula:
        return Formula(dim, self.expression, self.steps, self.result, self.note)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _quotient(numerator: int, stride: int, ceil_mode: bool) -> tuple[str, int, str]:
    """``⌊n/s⌋`` (or ``⌈n/s⌉``) as text, its value, and a note when rounding drops a remainder."""
    if stride == 1:
        return str(numerator), numerator, ""
    value = ceil_div(numerator, stride) if ceil_mode else numerator // stride
    left, right = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
    text = f"{left}{numerator}/{stride}{right}"
    note = ""
    remainder = numerator % stride
    if remainder and numerator >= 0:
        exact = f"{numerator / stride:.4g}"
        if ceil_mode:
            note = f"{exact} → {value}: ceil_mode adds a window that hangs over the end"
        else:
            rows = "pixel" if remainder == 1 else "pixels"
            note = (
                f"{exact} → {value}: the floor drops the last {remainder} {rows} "
                f"of the padded input (no window reaches {'it' if remainder == 1 else 'them'})"
            )
    return text, value, note


def conv_output_length(length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The value :func:`conv_length` works out, without its steps (what the engines need, per run)."""
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_length(
    length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, dim: str = "L"
) -> Formula:
    """``⌊(L + 2p − d(k−1) − 1)/s⌋ + 1`` (``ATen/native/ConvUtils.h``)."""
    numerator = length + 2 * padding - dilation * (kernel - 1) - 1
    expression = f"⌊({length} + 2·{padding} − {dilation}·({kernel}−1) − 1) / {stride}⌋ + 1"
    text, _, note = _quotient(numerator, stride, ceil_mode=False)
    result = conv_output_length(length, kernel, stride, padding, dilation)
    return Formula(dim, expression, f"{text} + 1 = {result}", result, note)


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """Left and right padding of ``padding='same'``: total ``d(k−1)``, the extra one on the right."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def same_length(length: int, kernel: int, dilation: int, dim: str = "L") -> Formula:
    left, right = same_padding(kernel, dilation)
    expression = f"padding='same': {dilation}·({kernel}−1) = {left + right} split {left} left, {right} right"
    return Formula(dim, expression, f"L_out = L_in = {length}", length)


def pool_output_length(length: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1,
                       ceil_mode: bool = False) -> int:  # fmt: skip
    """The value :func:`pool_length` works out, without its steps (what the engines need, per run)."""
    numerator = length + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return numerator // stride + 1
    result = (numerator + stride - 1) // stride + 1
    return result - 1 if (result - 1) * stride >= length + padding else result


def pool_length(
    length: int,
    kernel: int,
    stride: int,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    dim: str = "L",
) -> Formula:
    """Max/avg pooling output length (``ATen/native/Pool.h`` ``pooling_output_shape_pad_lr``).

    With ``ceil_mode`` the last window must start inside the input or the left padding.
    """
    numerator = length + 2 * padding - dilation * (kernel - 1) - 1
    result = pool_output_length(length, kernel, stride, padding, dilation, ceil_mode)
    if not ceil_mode:
        expression = f"⌊({length} + 2·{padding} − {dilation}·({kernel}−1) − 1) / {stride}⌋ + 1"
        text, _, note = _quotient(numerator, stride, ceil_mode=False)
        return Formula(dim, expression, f"{text} + 1 = {result}", result, note)
    expression = f"⌈({length} + 2·{padding} − {dilation}·({kernel}−1) − 1) / {stride}⌉ + 1"
    rounded_up = (numerator + stride - 1) // stride + 1
    text, _, note = _quotient(numerator, stride, ceil_mode=True)
    steps = f"{text} + 1 = {rounded_up}"
    if result < rounded_up:
        steps += f", − 1 = {result}"
        note = (
            f"the last window would start at {(result) * stride} ≥ L + p = {length + padding}, "
            "inside the right padding, so it is dropped"
        )
    return Formula(dim, expression, steps, result, note)


def transposed_length(
    length: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
    dim: str = "L",
) -> Formula:
    """``(L−1)s − 2p + d(k−1) + output_padding + 1``."""
    result = (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    expression = (
        f"({length}−1)·{stride} − 2·{padding} + {dilation}·({kernel}−1) + {output_padding} + 1"
    )
    return Formula(dim, expression, str(result), result)


def unpool_default_length(length: int, kernel: int, stride: int, padding: int, dim: str = "L") -> Formula:
    """PyTorch's default MaxUnpool size ``(L−1)s − 2p + k``."""
    result = (length - 1) * stride - 2 * padding + kernel
    expression = f"({length}−1)·{stride} − 2·{padding} + {kernel}"
    return Formula(dim, expression, str(result), result)


def adaptive_bins(length: int, output: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` bins of adaptive pooling (``ATen/native/AdaptivePooling.h``).

    >>> adaptive_bins(3, 8)
    [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2), (1, 3), (2, 3), (2, 3)]
    """
    return [((i * length) // output, ceil_div((i + 1) * length, output)) for i in range(output)]


def adaptive_bin_sizes(length: int, output: int) -> list[int]:
    """The distinct sizes of the adaptive bins, in constant time (outputs can be huge).

    Bin i spans ``q + ⌈(i·r mod O + r)/O⌉`` with ``q, r = divmod(L, O)``, and ``i·r mod O`` runs over
    the multiples of ``gcd(r, O)``.

    >>> adaptive_bin_sizes(3, 8), adaptive_bin_sizes(13, 6), adaptive_bin_sizes(12, 6)
    ([1, 2], [3], [2])
    """
    q, r = divmod(length, output)
    if r == 0:
        return [q]
    return [q + 1] if r == math.gcd(r, output) else [q + 1, q + 2]


def adaptive_length(length: int, output: int, dim: str = "L") -> Formula:
    if output == 0:
        return Formula(dim, "output_size 0", "empty", 0)
    sizes = adaptive_bin_sizes(length, output)
    size_text = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    expression = f"{output} bins over {length}: start=⌊i·{length}/{output}⌋, end=⌈(i+1)·{length}/{output}⌉"
    note = f"bins of size {size_text}"
    if output > length:
        note += "; more bins than inputs, so bins repeat"
    return Formula(dim, expression, f"bins of size {size_text} → {output}", output, note)


#: average pooling: above this many additions (taps × outputs) in ATen's order, and when pairwise sums
#: do far less work, the NumPy engine sums windows pairwise (float tolerance, not bit-exact)
PAIRWISE_WORK = 1 << 26


def window_sum_work(planes: int, lengths: tuple[int, ...], kernel: tuple[int, ...], padding: tuple[int, ...],
                    outs: tuple[int, ...]) -> tuple[int, int]:  # fmt: skip
    """(additions in ATen's order, additions of pairwise sums) for the windows of an average pool over
    ``planes`` planes: ATen adds every tap of every window; pairwise sums take one axis at a time, the
    last first, log₂ k doubling passes plus one per binary digit of k, over what the previous axis left.

    >>> window_sum_work(1, (2000, 2000), (1000, 1000), (0, 0), (1001, 1001))
    (1002001000000, 66022000)
    """
    exact = planes * math.prod(outs) * math.prod(kernel)
    shape = [n + 2 * p for n, p in zip(lengths, padding)]
    pairwise = 0
    for axis in range(len(shape) - 1, -1, -1):
        pairwise += planes * math.prod(shape) * (kernel[axis].bit_length() + 1)
        shape[axis] = outs[axis]
    return exact, pairwise


def sums_pairwise(planes: int, lengths: tuple[int, ...], kernel: tuple[int, ...], padding: tuple[int, ...],
                  outs: tuple[int, ...]) -> bool:  # fmt: skip
    """Whether the NumPy engine sums these windows pairwise (when ATen's order costs far more; the
    engine also keeps ATen's order where a sum could overflow)."""
    exact, pairwise = window_sum_work(planes, lengths, kernel, padding, outs)
    return exact > PAIRWISE_WORK and exact > 8 * pairwise
