"""Constructed and random inputs — ``zeros:1x1x5x5``, ``ones:4x4``, ``full:3.5:2x2``, ``arange:1x1x4x4``,
``eye:5``, ``randn:1x4x4``, ``rand:2x3``, ``randint:0:5:1x1x4x4`` — with torch's values, bit for bit,
without importing torch.

A random input is what ``torch.manual_seed(seed)`` followed by ``torch.randn(...)`` (``rand``,
``randint``) gives on the CPU: its own stream, started afresh for each input, apart from the stream
that initialises a network's weights (which starts from the same seed on its own).

>>> generate(parse_generator("arange:2x3")).tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
>>> generate(parse_generator("randn:3"), seed=0).tolist()  # torch.manual_seed(0); torch.randn(3)
[1.5409960746765137, -0.293428897857666, -2.1787893772125244]
>>> generate(parse_generator("randint:0:10:5"), seed=0).tolist()  # torch.randint(0, 10, (5,))
[4.0, 9.0, 3.0, 0.0, 3.0]
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any

from cnnops.errors import InputError, SettingError, setting
from cnnops.io.jsontext import MAX_DEPTH
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS
from cnnops.io.words import GENERATOR
from cnnops.records import record
from cnnops.text import LazyPattern, dims

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

KINDS = ("zeros", "ones", "full", "arange", "eye", "randn", "rand", "randint")
RANDOM_KINDS = ("randn", "rand", "randint")
#: the forms of ``NAME:ARGS`` text, for messages
FORMS = {
    "zeros": "zeros:SHAPE, e.g. zeros:1x1x5x5",
    "ones": "ones:SHAPE, e.g. ones:4x4",
    "full": "full:VALUE:SHAPE, e.g. full:3.5:2x2",
    "arange": "arange:SHAPE (0, 1, 2, … in that shape), e.g. arange:1x1x4x4",
    "eye": "eye:N or eye:NxM, e.g. eye:5",
    "randn": "randn:SHAPE, e.g. randn:1x4x4",
    "rand": "rand:SHAPE, e.g. rand:2x3",
    "randint": "randint:LOW:HIGH:SHAPE or randint:HIGH:SHAPE, e.g. randint:0:5:1x1x4x4",
}
_INT = LazyPattern(r"[-+]?\d+")
MAX_INT64 = 2**63 - 1
#: the seeds torch.manual_seed takes: a negative one counts as seed + 2**64, and its numbers depend on the
#: seed's low 32 bits only (MT19937's init_genrand), on either engine
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1


@record(frozen=True)
class Generator:
    """One constructed or random tensor: its kind, its shape and the numbers that define it."""

    kind: str
    shape: tuple[int, ...]
    value: float = 0.0  # full
    start: int | float = 0  # arange's start (a float: an arange of fractions, read exactly), randint's low
    stop: int = 0  # randint's high (exclusive)
    step: int | float = 1  # arange

    @property
    def random(self) -> bool:
        return self.kind in RANDOM_KINDS


#: the largest float32, exactly
FLOAT32_MAX = 3.4028234663852886e38


def full_value_problem(value: float) -> str | None:
    """Why torch.full refuses a float32 fill value (None: it takes it): a finite one beyond float32's
    range ("value cannot be converted to type float without overflow"), though inf and nan are taken.

    >>> full_value_problem(1e39), full_value_problem(float("inf"))
    ("is beyond float32's range (±3.4028234663852886e+38), which torch.full refuses", None)
    """
    if math.isfinite(value) and abs(value) > FLOAT32_MAX:
        return f"is beyond float32's range (±{FLOAT32_MAX!r}), which torch.full refuses"
    return None


def parse_generator(text: str) -> Generator:
    """``zeros:1x1x5x5``, ``full:3.5:2x2``, ``randint:0:5:4x4``, … as a :class:`Generator`.

    >>> parse_generator("full:3.5:2x2")
    Generator(kind='full', shape=(2, 2), value=3.5, start=0, stop=0, step=1)
    """
    match = GENERATOR.match(text)
    if match is None:
        raise InputError(f"'{text}' is not a generator — write one of {', '.join(KINDS)} with its arguments, "
                         "e.g. randn:1x4x4")
    kind, rest = match.group(1).lower(), match.group(2).strip()
    parts = [p.strip() for p in rest.split(":")]

    def fail(problem: str) -> InputError:
        return InputError(f"'{text.strip()}' {problem} — write {FORMS[kind]}")

    wanted = {"full": (2,), "randint": (2, 3)}.get(kind, (1,))
    if len(parts) not in wanted:
        raise fail(f"has {len(parts)} part{'s' if len(parts) != 1 else ''} after '{kind}:'")
    shape = shape_from_text(parts[-1], fail)
    if kind == "full":
        try:
            value = float(parts[0])
        except ValueError:
            raise fail(f"has the value '{parts[0]}', which is not a number") from None
        if problem := full_value_problem(value):
            raise fail(f"has the value {parts[0].strip()}: it {problem}")
        return Generator(kind, shape, value=value)
    if kind == "eye":
        if len(shape) not in (1, 2):
            raise fail(f"has {len(shape)} sizes")
        return Generator(kind, (shape[0], shape[-1]))
    if kind == "randint":
        bounds = parts[:-1]
        if not all(_INT.fullmatch(b) for b in bounds):
            raise fail("has bounds that are not whole numbers")
        low, high = (0, int(bounds[0])) if len(bounds) == 1 else (int(bounds[0]), int(bounds[1]))
        return randint_generator(low, high, shape)
    return Generator(kind, shape)


def randint_generator(low: int, high: int, shape: tuple[int, ...]) -> Generator:
    """``torch.randint(low, high, shape)``, with torch's checks on the bounds."""
    if not (-(2**63) <= low <= MAX_INT64 and -(2**63) <= high <= MAX_INT64):
        raise InputError(f"randint bounds {low} and {high} must fit in 64 bits")
    if low >= high:
        raise InputError(f"randint needs low < high, got low={low} and high={high} — torch.randint draws from "
                         "[low, high)")
    return Generator("randint", shape, start=low, stop=high)


def shape_from_text(text: str, fail: Any = None) -> tuple[int, ...]:
    """``1x4x4``, ``1×4×4`` or ``1,4,4`` as ``(1, 4, 4)``."""
    parts = [p.strip() for p in re.split(r"[x×,]", text.strip().strip("()[]"))]
    if not parts or not all(p.isdigit() for p in parts):
        problem = f"has the shape '{text}', which is not sizes such as 1x4x4"
        raise fail(problem) if fail else InputError(problem)
    return check_shape(tuple(int(p) for p in parts))


def check_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) > MAX_DEPTH:
        raise InputError(f"shape {dims(shape)} has {len(shape)} dimensions — at most {MAX_DEPTH} are allowed")
    if any(n < 0 for n in shape):
        raise InputError(f"shape {shape} has a negative size")
    return shape


def generate(gen: Generator, *, seed: int = 0, max_elements: int = DEFAULT_MAX_ELEMENTS,
             max_memory: int | None = None) -> np.ndarray:  # fmt: skip
    """The float32 tensor ``gen`` describes; random kinds start ``torch.manual_seed(seed)``'s stream.
    Refused before it is made when it holds more than ``max_elements`` numbers or needs more than
    ``max_memory`` bytes (None: :func:`~cnnops.io.memory.default_max_memory`)."""
    import numpy as np

    from cnnops.io.memory import check_memory

    count = math.prod(gen.shape)
    if count > max_elements:
        raise InputError(f"{gen.kind} of shape {dims(gen.shape)} would hold {count:,} numbers, more than the "
                         f"limit of {max_elements:,} — raise {setting('max_elements')} to allow it")
    if count == 0:
        raise InputError(f"{gen.kind} of shape {dims(gen.shape)} is empty — a tensor needs at least one number")
    # the float32 tensor; arange's exact int64 or float64 values too (random kinds draw in small blocks)
    check_memory(count * (12 if gen.kind == "arange" else 4), max_memory, f"{gen.kind} of shape {dims(gen.shape)}")
    if gen.kind == "zeros":
        return np.zeros(gen.shape, dtype=np.float32)
    if gen.kind == "ones":
        return np.ones(gen.shape, dtype=np.float32)
    if gen.kind == "full":
        with np.errstate(over="ignore"):
            return np.full(gen.shape, gen.value, dtype=np.float32)
    if gen.kind == "arange":
        if isinstance(gen.start, int) and isinstance(gen.step, int):  # exact in int64, then float32 as every input
            values: np.ndarray = gen.start + gen.step * np.arange(count, dtype=np.int64)
        else:  # fractions whose every value the reader found exact in float32: exact in float64
            values = gen.start + gen.step * np.arange(count, dtype=np.float64)
            values[0] = gen.start  # numpy's first value is its start, -0. included
        return values.astype(np.float32).reshape(gen.shape)
    if gen.kind == "eye":
        return np.eye(gen.shape[0], gen.shape[1], dtype=np.float32)
    check_seed(seed)
    stream = TorchStream(seed)
    if gen.kind == "randn":
        return stream.normal(count).reshape(gen.shape)
    if gen.kind == "rand":
        return stream.uniform(count).reshape(gen.shape)
    return stream.randint(count, int(gen.start), gen.stop, dtype=np.float32).reshape(gen.shape)


def seed_problem(seed: object) -> str | None:
    """Why ``seed`` is no seed ``torch.manual_seed`` takes (None: it is one).

    >>> seed_problem(-1), seed_problem(2**64)
    (None, "seed 18446744073709551616 is outside torch.manual_seed's range, -2**63 to 2**64 - 1")
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        return f"seed {seed!r} is not a whole number"
    if not SEED_MIN <= seed <= SEED_MAX:
        return f"seed {seed} is outside torch.manual_seed's range, -2**63 to 2**64 - 1"
    return None


def check_seed(seed: object) -> None:
    """Refuse a seed ``torch.manual_seed`` would refuse (see :func:`seed_problem`)."""
    problem = seed_problem(seed)
    if problem is not None:
        raise SettingError(problem)


# ---------------------------------------------------------------------------------------------- torch's stream


#: numbers drawn per block: a block's words and its transform's temporaries (Box–Muller's float64
#: ones are several times its size) stay a few MB, whatever the tensor's size; the values do not depend on it
DRAW_BLOCK = 1 << 16


def _blocks(n: int, size: int = DRAW_BLOCK) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each block of ``size`` in ``range(n)``."""
    for start in range(0, n, size):
        yield start, min(n, start + size)


class TorchStream:
    """``torch.manual_seed(seed)``'s CPU generator: MT19937, one 32-bit word per float32 draw, two
    (first word high) per 64-bit draw (:class:`cnnops.io.mersenne.MT19937`).

    >>> TorchStream(0).uniform(2).tolist()  # torch.manual_seed(0); torch.rand(2)
    [0.49625658988952637, 0.7682217955589294]
    """

    def __init__(self, seed: int):
        from cnnops.io.mersenne import MT19937, seed_key

        self.bits = MT19937(seed_key(int(seed)))

    def words(self, n: int, *, coming: int = 0) -> np.ndarray:
        """The next ``n`` 32-bit words, as uint64 (``coming``: the words drawn in all by a caller drawing in
        blocks, this block's included)."""
        return self.bits.words(n, coming=coming)

    def uniform(self, n: int) -> np.ndarray:
        """``uniform_(0, 1)`` on float32: the low 24 bits of a word, times 2⁻²⁴ (exact)."""
        import numpy as np

        out = np.empty(n, dtype=np.float32)
        for start, stop in _blocks(n):
            words = self.words(stop - start, coming=n)
            np.multiply((words & 0xFFFFFF).astype(np.float32), np.float32(2.0**-24), out=out[start:stop])
        return out

    def randint(self, n: int, low: int, high: int, dtype: Any = "int64") -> np.ndarray:
        """``random_(low, high)`` on int64: a word modulo the range — two words (the first high) once the
        range reaches 2**28, where torch switches to 64-bit draws to keep the modulo bias small (``dtype``:
        the array's, each int64 value converted as ``astype`` converts it)."""
        import numpy as np

        span = high - low
        out = np.empty(n, dtype=dtype)
        for start, stop in _blocks(n):
            if span < 2**28:
                out[start:stop] = (self.words(stop - start, coming=n) % np.uint64(span)).astype(np.int64) + np.int64(low)
                continue
            pairs = self.words(2 * (stop - start), coming=2 * n).reshape(-1, 2)
            draws = (pairs[:, 0] << np.uint64(32)) | pairs[:, 1]
            # low + a remainder below the span, in uint64's wrapping arithmetic: the true sum lies in
            # [low, high), so its two's-complement bits read as int64 are it
            out[start:stop] = ((draws % np.uint64(span)) + np.uint64(low % 2**64)).view(np.int64)
        return out

    def normal(self, n: int) -> np.ndarray:
        """``normal_(0, 1)`` on float32 as torch's CPU kernel computes it (``torch.randn``)."""

        if n < 16:
            return self._normal_serial(n)
        data = self.uniform(n)
        fill = _box_muller_avx2 if normal_kernel() == "avx2" else _box_muller_scalar
        groups = data[: n // 16 * 16].reshape(-1, 16)  # each group of 16 is transformed on its own
        for start, stop in _blocks(len(groups), DRAW_BLOCK // 16):
            groups[start:stop] = fill(groups[start:stop])
        if n % 16:  # torch redraws the last 16 numbers and transforms them again
            data[n - 16 :] = fill(self.uniform(16).reshape(1, 16)).reshape(-1)
        return data

    def _normal_serial(self, n: int) -> np.ndarray:
        """Fewer than 16 numbers: ``at::normal_distribution<double>``, Box–Muller on 53-bit uniforms,
        one pair per two numbers (the second cached), rounded to float32."""
        import numpy as np

        libm = _libm()
        out: list[float] = []
        while len(out) < n:
            w = [int(v) for v in self.words(4)]
            u1 = (((w[0] << 32) | w[1]) & (2**53 - 1)) * 2.0**-53
            u2 = (((w[2] << 32) | w[3]) & (2**53 - 1)) * 2.0**-53
            radius = math.sqrt(-2.0 * libm.log1p(-u2))
            theta = 2.0 * math.pi * u1
            out += [radius * libm.cos(theta), radius * libm.sin(theta)]
        return np.array(out[:n], dtype=np.float32)


def machine() -> str:
    """The processor's architecture as ``platform.machine()`` names it (``x86_64``, ``aarch64``, ``AMD64``),
    read from ``os.uname()`` where there is one: the ``platform`` module takes 1–2 ms to import."""
    import os

    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().machine)
    import platform  # Windows

    return platform.machine()


@functools.cache
def normal_kernel() -> str:
    """Which of torch's CPU ``normal_`` kernels runs here: ``avx2`` (x86-64 with AVX2 and FMA; torch
    registers no AVX-512 one) unless ``ATEN_CPU_CAPABILITY=default`` asks for the baseline, else
    ``scalar`` (the portable C++ loop, also used on ARM)."""
    import os

    if machine().lower() not in ("x86_64", "amd64"):
        return "scalar"
    if os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower() == "default":
        return "scalar"
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
    return "avx2" if features.get("AVX2") and features.get("FMA3") else "scalar"


@functools.cache
def _libm() -> Any:
    """The C maths library torch's kernels call (``logf``, ``sinf``, ``cosf``, ``log1p``, ``sin``, ``cos``)."""
    import ctypes
    import ctypes.util
    import sys

    names = {"linux": ["libm.so.6"], "darwin": ["/usr/lib/libSystem.B.dylib"], "win32": ["ucrtbase"]}
    for name in [*names.get(sys.platform, []), ctypes.util.find_library("m")]:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        for fn, kind in (("logf", ctypes.c_float), ("sinf", ctypes.c_float), ("cosf", ctypes.c_float),
                         ("log1p", ctypes.c_double), ("sin", ctypes.c_double), ("cos", ctypes.c_double)):  # fmt: skip
            getattr(lib, fn).restype = kind
            getattr(lib, fn).argtypes = [kind]
        return lib
    raise InputError("randn needs the C maths library (libm) to reproduce torch's numbers, and it cannot be "
                     "loaded here — give the input as numbers instead")


# ---------------------------------------------------------------------------------------------- Box–Muller
# torch transforms 16 float32 uniforms at a time: u1 = 1 - u[0:8], u2 = u[8:16],
# radius = sqrt(-2 log u1), theta = 2π u2, out[0:8] = radius cos θ, out[8:16] = radius sin θ.


def _box_muller_scalar(u: np.ndarray) -> np.ndarray:
    """The portable kernel: float32 ``std::log``, ``std::cos``, ``std::sin`` (the C library's logf, cosf,
    sinf, called one by one), θ rounded to float32 from the double 2π·u2."""
    import numpy as np

    libm = _libm()
    logf, cosf, sinf = libm.logf, libm.cosf, libm.sinf
    f32 = np.float32
    out = np.empty_like(u)
    for block, row in zip(out, u.tolist(), strict=True):
        for j in range(8):
            u1 = float(f32(1) - f32(row[j]))
            radius = f32(math.sqrt(f32(-2) * f32(logf(u1))))  # sqrt in double, rounded once: sqrtf
            theta = float(f32(2.0 * math.pi * row[j + 8]))
            block[j] = f32(radius * f32(cosf(theta))) + f32(0)  # fma(x, std=1, mean=0) turns -0 into +0
            block[j + 8] = f32(radius * f32(sinf(theta))) + f32(0)
    return out


def _box_muller_avx2(u: np.ndarray) -> np.ndarray:
    """The AVX2 kernel: Pommier's ``log256_ps`` and ``sincos256_ps`` (avx_mathfun.h) in float32, with the
    multiply-adds fused as torch's GCC build fuses them (checked against torch on 32M draws)."""
    import numpy as np

    f32 = np.float32
    u1 = f32(1) - u[:, :8]
    radius = np.sqrt(f32(-2) * _log256(u1))
    sin, cos = _sincos256(f32(2.0 * math.pi) * u[:, 8:])
    return np.concatenate([radius * cos + f32(0), radius * sin + f32(0)], axis=1)


def _fma32(a: Any, b: Any, c: Any) -> np.ndarray:
    """float32 ``a * b + c`` rounded once. The product is exact in float64 and the sum is rounded to
    float64 and then to float32; that double rounding can only go wrong when the float64 sum lands
    exactly halfway between two float32 numbers, where the exact remainder decides. For a normal
    float32 such a sum has 1 and then zeros in the 29 bits below float32's precision; those sums, and
    the ones in float32's subnormal range (spaced alike whatever their size), are rounded by
    :func:`_fma32_exact` — the rest, nearly all, as they are."""
    import numpy as np

    f64 = np.float64
    p, c = np.broadcast_arrays(np.asarray(a, f64) * np.asarray(b, f64), np.asarray(c, f64))
    s = np.asarray(p + c)
    r = np.asarray(s.astype(np.float32))
    odd = (s.view(np.uint64) & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    odd |= np.abs(s) < f64(2.0**-126)
    if odd.any():
        r[odd] = _fma32_exact(p[odd], c[odd], s[odd])
    return r


def _fma32_exact(p: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """float32 ``p + c`` rounded once, ``s`` being their float64 sum: where ``s`` is halfway between two
    float32 numbers, the sign of the remainder picks the one the exact sum is nearer."""
    import numpy as np

    f64 = np.float64
    rest = (p - (s - (s - p))) + (c - (s - p))  # Knuth's two-sum: s + rest == p + c exactly
    r = s.astype(np.float32)
    r64 = r.astype(f64)
    other = np.nextafter(r, np.where(s > r64, np.float32(np.inf), np.float32(-np.inf)))
    tie = (s != r64) & (s == (r64 + other.astype(f64)) / 2) & (rest != 0)
    if tie.any():
        upward = (rest > 0) == (other > r)
        r = np.where(tie & upward, other, r)
    return r


_LOG_P = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
          -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)  # fmt: skip
_SIN_P = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
_COS_P = (2.443315711809948e-005, -1.388731625493765e-003, 4.166664568298827e-002)


def _log256(x: np.ndarray) -> np.ndarray:
    """``log256_ps`` for x in (0, 1]: exponent and mantissa split, then Cephes' polynomial."""
    import numpy as np

    f32 = np.float32
    bits = x.view(np.uint32)
    e = ((bits >> 23).astype(np.int32) - 0x7F).astype(f32) + f32(1)
    m = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(f32)  # mantissa in [0.5, 1)
    small = m < f32(0.707106781186547524)
    e = e - np.where(small, f32(1), f32(0))
    m = (m - f32(1)) + np.where(small, m, f32(0))
    z = m * m
    y = np.full_like(m, f32(_LOG_P[0]))
    for p in _LOG_P[1:]:
        y = _fma32(y, m, f32(p))
    y = y * m
    y = _fma32(y, z, e * f32(-2.12194440e-4))
    y = y - z * f32(0.5)
    return (m + y) + e * f32(0.693359375)


def _sincos256(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sincos256_ps`` for x in [0, 2π): octant, Cody–Waite reduction, Cephes' two polynomials."""
    import numpy as np

    f32 = np.float32
    j = (np.trunc(x * f32(1.27323954473516)).astype(np.int32) + 1) & ~1
    y = j.astype(f32)
    sin_sign = ((j & 4) != 0) != (x < 0)
    cos_sign = ((j - 2) & 4) == 0
    poly = (j & 2) == 0
    x = np.abs(x)
    x = _fma32(y, f32(-0.78515625), x)
    x = _fma32(y, f32(-2.4187564849853515625e-4), x)
    x = _fma32(y, f32(-3.77489497744594108e-8), x)
    z = x * x
    c = _fma32(_fma32(f32(_COS_P[0]), z, f32(_COS_P[1])), z, f32(_COS_P[2])) * z
    c = _fma32(c, z, -(z * f32(0.5))) + f32(1)
    s = _fma32(_fma32(f32(_SIN_P[0]), z, f32(_SIN_P[1])), z, f32(_SIN_P[2])) * z
    s = _fma32(s, x, x)
    zero = np.float32(0)
    # the kernel selects by masking and adding: the value chosen, plus +0
    sin = np.where(poly, zero, c) + np.where(poly, s, zero)
    cos = np.where(poly, c, zero) + np.where(poly, zero, s)
    return np.where(sin_sign, -sin, sin), np.where(cos_sign, -cos, cos)
