"""Tensor text as people paste it: JSON, or Python as a tutorial writes it — read, never evaluated.

JSON goes through orjson. Anything else is parsed with :mod:`ast` and only these forms are taken:
numbers (``1.``, ``-0.``, ``1e-3``), lists and tuples, ``float('nan')``, ``float('inf')``, ``math.inf``
(``np.``/``torch.`` too), ``nan`` and ``inf`` as torch prints them; the wrappers ``torch.tensor(...)``,
``torch.Tensor(...)``, ``np.array(...)``, ``numpy.array(...)`` and the printed ``tensor(...)``/
``array(...)``, with ``dtype=`` a float type; then ``.reshape(...)``, ``.view(...)``, ``.unsqueeze(d)``,
``.flatten()``, ``.float()``. The constructors ``torch.zeros/ones/full/arange/eye/randn/rand/randint``
(and numpy's ``zeros/ones/full/arange/eye``) become :mod:`~cnnops.io.generators`, and a leading
``torch.manual_seed(N)`` statement seeds a random one. Every other name, call or attribute is refused
with the reason. The numbers then go through the one nested-list reader (:mod:`cnnops.io.nested`).

>>> parse_tensor_text("[[-4., 0., 4.]]", "input").doc
[[-4.0, 0.0, 4.0]]
>>> parse_tensor_text("torch.tensor([[1., float('nan')]], dtype=torch.float32)", "input").doc
[[1.0, nan]]
>>> t = parse_tensor_text("torch.manual_seed(3); x = torch.randn(1, 4, 4)", "input")
>>> t.generator.kind, t.generator.shape, t.seed
('randn', (1, 4, 4), 3)
>>> parse_tensor_text("__import__('os').system('ls')", "input")
Traceback (most recent call last):
...
cnnops.errors.InputError: input: the name '__import__' is not allowed — a tensor is numbers, lists and tuples, optionally in torch.tensor(...) or np.array(...)
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import field
from typing import TYPE_CHECKING, Any

from cnnops.errors import CnnopsError, InputError
from cnnops.io.generators import Generator, check_shape, full_value_problem, generate, randint_generator, seed_problem
from cnnops.io.jsontext import MAX_DEPTH, UTF8_BOM, JSONSyntaxError, gc_paused, parse_json
from cnnops.io.memory import DEFAULT_MAX_ELEMENTS
from cnnops.io.nested import to_array
from cnnops.records import record
from cnnops.text import LazyPattern, show

if TYPE_CHECKING:
    import numpy as np

#: Python-literal text longer than this is refused: ast needs ~100 bytes and ~5 µs per number
MAX_PYTHON_TEXT = 8 * 2**20
#: text made only of brackets, numbers, commas, and nan/inf, which a few substitutions turn into JSON
_NAN_INF = LazyPattern(r"\b(?:nan|inf)\b")
_NUMERIC = LazyPattern(r"[\[\]\d.eE+\-,\s]*")
_GRAD_FN = LazyPattern(r",\s*grad_fn=<\w+>")
_FIX = "a tensor is numbers, lists and tuples, optionally in torch.tensor(...) or np.array(...)"

WRAPPERS = {"torch.tensor", "torch.Tensor", "torch.FloatTensor", "torch.as_tensor", "np.array", "np.asarray",
            "numpy.array", "numpy.asarray", "tensor", "array"}  # fmt: skip
_NUMPY_WRAPPERS = {"np.array", "np.asarray", "numpy.array", "numpy.asarray", "array"}
CONSTANTS = {f"{module}.{name}": value for module in ("math", "np", "numpy", "torch")
             for name, value in (("inf", math.inf), ("nan", math.nan))}  # fmt: skip
#: names as torch and numpy print non-finite numbers, and as JSON writes them
NAMES = {"nan": math.nan, "inf": math.inf, "NaN": math.nan, "Infinity": math.inf}
FLOAT32 = {"torch.float32", "torch.float", "np.float32", "numpy.float32", "float32", "'float32'"}
FLOAT64 = {"np.float64", "numpy.float64", "float64", "'float64'", "float", "np.double", "numpy.double",
           "'float'", "'double'", "torch.float64", "torch.double"}  # fmt: skip
INT64 = {"torch.int64", "torch.long", "np.int64", "numpy.int64", "int64", "'int64'", "int"}
METHODS = ("reshape", "view", "unsqueeze", "flatten", "float")
MODULES = ("torch", "numpy", "math")


@record
class TensorText:
    """What a tensor text says: numbers (``doc``: nested lists, numbers, or a ``{"data": …}`` document),
    or a generator; then the ``steps`` written after it; the seed of a ``torch.manual_seed(N)`` in it."""

    doc: Any = None
    generator: Generator | None = None
    steps: list[tuple[str, tuple]] = field(default_factory=list)
    seed: int | None = None
    syntax: str = "JSON"  # "JSON" or "Python"

    @property
    def random(self) -> bool:
        return self.generator is not None and self.generator.random


def parse_tensor_text(text: str | bytes, label: str) -> TensorText:
    """JSON through orjson; anything else through :mod:`ast`, refusing what would need evaluation."""
    if isinstance(text, bytes) and text.startswith(UTF8_BOM):
        text = text[3:]
    try:
        with gc_paused():
            return TensorText(parse_json(text, label))
    except JSONSyntaxError as exc:
        json_error = exc
    source = text.decode("utf-8") if isinstance(text, bytes) else text  # parse_json checked it is UTF-8
    jsonised = _as_json(source)
    if jsonised is not None:
        try:
            with gc_paused():
                return TensorText(parse_json(jsonised, label), syntax="Python")
        except JSONSyntaxError:
            pass  # ast says what is wrong
    return _parse_python(source.strip(), label, json_error)


def _as_json(text: str) -> str | None:
    """Bracketed numbers in Python's spelling (``1.``, ``.5``, ``[1, 2,]``, ``nan``, ``inf``) as JSON, or
    None when the text holds anything else. Parentheses are never rewritten: ``(1)`` is not a tuple."""
    if not _NUMERIC.fullmatch(_NAN_INF.sub("", text)):
        return None
    text = re.sub(r"(?<=\d)\.(?!\d)", ".0", text)
    text = re.sub(r"(?<![\d.])\.(?=\d)", "0.", text)
    text = re.sub(r",(\s*)\]", r"\1]", text)
    return _NAN_INF.sub(lambda m: "NaN" if m.group() == "nan" else "Infinity", text)


def _parse_python(text: str, label: str, json_error: JSONSyntaxError) -> TensorText:
    if len(text) > MAX_PYTHON_TEXT:
        raise InputError(
            f"{label} is {len(text) / 2**20:.1f} MB of text that is not JSON, more than the "
            f"{MAX_PYTHON_TEXT // 2**20} MB cnnops reads as Python — write it as JSON (1.0 rather than 1.) or "
            "save it with numpy.save"
        )
    text = _GRAD_FN.sub("", text)  # torch prints tensor([...], grad_fn=<AddBackward0>): not Python, and not data
    try:
        tree = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        where = f" at line {exc.lineno}, column {exc.offset}" if exc.lineno else ""
        raise InputError(
            f"{label} is not valid JSON: {json_error.reason}; nor a Python literal: {exc.msg}{where}"
        ) from None
    except (RecursionError, MemoryError):
        raise InputError(f"{label} is nested too deeply — a tensor has at most {MAX_DEPTH} dimensions") from None
    except ValueError as exc:  # integers of more than sys.get_int_max_str_digits() digits
        raise InputError(f"{label}: {exc} — write such a number with an exponent, e.g. 1e5000") from None
    reader = _Reader(label)
    if "_" in text:
        reader.refuse_private(tree)
    try:
        return reader.module(tree)
    except InputError:
        # JSON's words (null, true, false) in it: JSON with something wrong, which JSON's reason names
        # (a --json result with text after it), not Python that names an unknown variable
        if text[:1] in ("{", "[") and any(isinstance(node, ast.Name) and node.id in ("null", "true", "false")
                                         for node in ast.walk(tree)):  # fmt: skip
            raise json_error from None
        raise


class _Reader:
    """The walk over the syntax tree; ``fail`` says what was found and what a tensor text may hold."""

    def __init__(self, label: str):
        self.label = label

    def fail(self, problem: str, fix: str = _FIX) -> InputError:
        return InputError(f"{self.label}: {problem} — {fix}")

    def refuse_private(self, tree: ast.AST) -> None:
        """Private and dunder names are refused wherever they are, before anything is read."""
        for node in ast.walk(tree):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
            if name.startswith("_"):
                raise self.fail(f"the name '{name}' is not allowed")

    # --- statements: imports, torch.manual_seed(N), then one tensor -------------------------------
    def module(self, tree: ast.Module) -> TensorText:
        seed: int | None = None
        result: TensorText | None = None
        assigned: str | None = None
        for statement in tree.body:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                self.imports(statement)
                continue
            value = statement.value if isinstance(statement, (ast.Expr, ast.Assign)) else None
            if isinstance(statement, ast.Assign):
                if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
                    raise self.fail("only `name = tensor` assignments are understood", "give one tensor")
                assigned = statement.targets[0].id
            elif value is None:
                raise self.fail(f"a {type(statement).__name__} statement is not allowed", "give one tensor")
            if isinstance(value, ast.Call) and dotted(value.func) in ("torch.manual_seed", "torch.random.manual_seed"):
                if result is not None:
                    raise self.fail("torch.manual_seed comes after the tensor", "put it first")
                seed = self.seed(value)
                continue
            if result is not None:
                if assigned and _names(value, assigned):  # `x = torch.randn(2)` then `x` or `print(x)`
                    continue
                raise self.fail("the text holds more than one tensor", "give one tensor per input")
            result = self.tensor(value)  # type: ignore[arg-type]
        if result is None:
            raise self.fail("the text holds no tensor", "give a tensor such as [[1., 2.], [3., 4.]]")
        result.seed, result.syntax = seed, "Python"
        return result

    def imports(self, statement: ast.Import | ast.ImportFrom) -> None:
        modules = [statement.module or ""] if isinstance(statement, ast.ImportFrom) else [a.name for a in statement.names]
        for module in modules:
            if module.split(".")[0] not in MODULES:
                raise self.fail(f"importing '{module}' is not allowed", "only torch, numpy and math are understood")

    def seed(self, call: ast.Call) -> int:
        if len(call.args) != 1 or call.keywords or not _is_int(self.number(call.args[0])):
            raise self.fail("torch.manual_seed takes one whole number here", "write e.g. torch.manual_seed(0)")
        seed = int(self.number(call.args[0]))
        problem = seed_problem(seed)
        if problem is not None:
            raise self.fail(problem, "use a seed such as 0 or 42")
        return seed

    # --- the tensor: a wrapper or constructor call, then methods --------------------------------------
    def tensor(self, node: ast.expr) -> TensorText:
        steps: list[tuple[str, tuple]] = []
        while (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and not isinstance(node.func.value, (ast.Name, ast.Attribute))):  # fmt: skip
            name = node.func.attr
            if name not in METHODS:
                raise self.fail(f"the method .{name}() is not understood",
                                "after a tensor write .reshape(...), .view(...), .unsqueeze(d), .flatten() or .float()")
            steps.insert(0, (name, self.method_args(name, node)))
            node = node.func.value
        if isinstance(node, ast.Call):
            name = self.callee(node)
            if name in WRAPPERS:
                return TensorText(self.wrapped(name, node), steps=steps)
            if "." in name:
                return TensorText(generator=self.constructor(name, node), steps=steps)
        if steps:
            raise self.fail(f"a list has no .{steps[0][0]}()", "wrap it first: torch.tensor([...]).reshape(...)")
        return TensorText(self.value(node, 0))

    def callee(self, call: ast.Call) -> str:
        name = dotted(call.func)
        if name is None:
            raise self.fail("this call is not allowed")
        if any(part.startswith("_") for part in name.split(".")):
            raise self.fail(f"calling '{name}' is not allowed")
        return name

    def wrapped(self, name: str, call: ast.Call) -> Any:
        if len(call.args) != 1 or isinstance(call.args[0], ast.Starred):
            if name in ("torch.Tensor", "torch.FloatTensor") and all(isinstance(a, ast.Constant) for a in call.args):
                raise self.fail(f"{name} with sizes makes a tensor of uninitialised memory",
                                "use torch.zeros(...) or give the numbers as a list")
            raise self.fail(f"{name} takes one list of numbers here", "write e.g. torch.tensor([[1., 2.], [3., 4.]])")
        if name in ("torch.Tensor", "torch.FloatTensor") and _is_int(_constant(call.args[0])):
            raise self.fail(f"{name}({_constant(call.args[0])}) makes a tensor of uninitialised memory",
                            "use torch.zeros(...) or give the numbers as a list")
        float64 = name in _NUMPY_WRAPPERS
        for keyword in call.keywords:
            self.keyword(name, keyword, float64=float64)
        return self.value(call.args[0], 0)

    def keyword(self, name: str, keyword: ast.keyword, *, float64: bool = False, integer: bool = False) -> None:
        """``dtype=`` (float32; float64 too for numpy, whose default it is; int64 where ``integer``),
        ``requires_grad=``, ``device='cpu'``; everything else is refused."""
        if keyword.arg == "dtype":
            dtype = dotted(keyword.value) or (repr(keyword.value.value) if isinstance(keyword.value, ast.Constant)
                                              else "")  # fmt: skip
            allowed = FLOAT32 | (FLOAT64 - {"torch.float64", "torch.double"} if float64 else set()) | (
                INT64 if integer else set())
            if dtype not in allowed:
                raise self.fail(f"dtype={dtype or '…'} is not float32",
                                "cnnops computes in float32, torch's default — drop dtype= or use torch.float32")
        elif keyword.arg == "requires_grad" and isinstance(_constant(keyword.value), bool):
            pass
        elif keyword.arg == "device" and _constant(keyword.value) == "cpu":
            pass
        else:
            shown = "**" if keyword.arg is None else f"{keyword.arg}="
            raise self.fail(f"the argument {shown} of {name} is not understood",
                            "cnnops takes dtype=torch.float32, requires_grad= and device='cpu'")

    def constructor(self, name: str, call: ast.Call) -> Generator:
        module, _, function = name.rpartition(".")
        if module in ("np.random", "numpy.random", "random"):
            raise self.fail(f"{name} draws from numpy's or Python's stream, not torch's",
                            "use torch.randn(...), torch.rand(...) or torch.randint(...) (or randn:SHAPE)")
        if module == "torch" and function in ("empty", "empty_like"):
            raise self.fail(f"{name} holds whatever memory held", "use torch.zeros(...)")
        kinds = ("zeros", "ones", "full", "arange", "eye") + (("randn", "rand", "randint") if module == "torch" else ())
        if module not in ("torch", "np", "numpy") or function not in kinds:
            made = "torch.zeros, ones, full, arange, eye, randn, rand, randint (and numpy's zeros, ones, full, arange, eye)"
            raise self.fail(f"calling '{name}' is not allowed",
                            f"{_FIX}; tensors can be made with {made}")
        args, keywords = list(call.args), {k.arg: k for k in call.keywords}
        if any(isinstance(a, ast.Starred) for a in args) or None in keywords:
            raise self.fail(f"* and ** arguments of {name} are not understood", "write the sizes out")

        def take(keyword: str) -> ast.expr | None:
            return keywords.pop(keyword).value if keyword in keywords else None

        numpy = module != "torch"
        if function in ("zeros", "ones", "randn", "rand"):
            size = take("shape" if numpy else "size")
            shape = self.size(name, args if size is None else [size], numpy=numpy)
            gen = Generator(function, shape)
        elif function == "full":
            size, fill = take("shape" if numpy else "size"), take("fill_value")
            args += [n for n in (size, fill) if n is not None]
            if len(args) != 2:
                raise self.fail(f"{name} takes a size and a value", f"write e.g. {name}((2, 2), 3.5)")
            value = self.number(args[1])
            problem = None if numpy else full_value_problem(float(value))
            if problem:
                raise self.fail(f"the value {show(value)} of {name} {problem}", "give a value within that range, or float('inf')")
            gen = Generator("full", self.size(name, [args[0]], numpy=True), value=float(value))
        elif function == "arange":
            dtype = keywords["dtype"].value if "dtype" in keywords else None
            gen = self.arange(name, args, take, _dtype_text(dtype) if dtype is not None else None, numpy=numpy)
        elif function == "eye":
            sizes = [self.number(a) for a in args] + [self.number(n) for n in (take("n"), take("m"), take("N"),
                                                                              take("M")) if n]
            if not 1 <= len(sizes) <= 2 or not all(_is_int(n) and n >= 0 for n in sizes):
                raise self.fail(f"{name} takes one or two sizes", f"write e.g. {name}(3) or {name}(3, 4)")
            gen = Generator("eye", check_shape((sizes[0], sizes[-1])))
        else:  # randint(high, size) or randint(low, high, size)
            size = take("size")
            bounds = [take("low"), take("high")]
            args = [b for b in bounds if b is not None] + args if any(bounds) else args
            if size is not None:
                args.append(size)
            if len(args) not in (2, 3):
                raise self.fail(f"{name} takes (high, size) or (low, high, size)", f"write e.g. {name}(0, 5, (1, 4, 4))")
            numbers = [self.number(a) for a in args[:-1]]
            if not all(_is_int(n) for n in numbers):
                raise self.fail(f"{name} takes whole-number bounds", f"write e.g. {name}(0, 5, (1, 4, 4))")
            low, high = (0, numbers[0]) if len(numbers) == 1 else numbers
            try:
                gen = randint_generator(int(low), int(high), self.size(name, [args[-1]], numpy=True))
            except InputError as exc:
                raise self.fail(str(exc), "fix the bounds") from None
        for keyword in list(keywords.values()):
            integer = function in ("arange", "randint")
            self.keyword(name, keyword, float64=numpy, integer=integer)
            if keyword.arg == "dtype" and function == "randint" and max(abs(gen.start), abs(gen.stop)) > 2**24:
                if dotted(keyword.value) not in INT64:
                    raise self.fail("randint bounds beyond 2**24 are not exact in float32", "drop dtype=")
        return gen

    def arange(self, name: str, args: list[ast.expr], take: Any, dtype: str | None, *, numpy: bool) -> Generator:
        """``torch.arange(end)``, ``(start, end)``, ``(start, end, step)`` (numpy's ``stop``), keywords bound
        as torch or numpy binds them. Whole numbers are exact in int64, then float32 as every input;
        fractions (or float32 as the dtype) are read when every value is exact in float32."""
        names = ("start", "stop", "step") if numpy else ("start", "end", "step")
        keywords = {n: node for n in names if (node := take(n)) is not None}
        form = f"write e.g. {name}(5), {name}(1, 5) or {name}(0., 2., 0.5)"
        if len(args) > 3:
            raise self.fail(f"{name} takes at most three numbers: start, {names[1]}, step", form)
        if numpy or len(args) != 1 or "end" in keywords:
            bound = dict(zip(names, args))
        else:
            bound = {"end": args[0]}  # torch.arange(end): the overload without start or step
            if keywords:
                raise self.fail(f"{name}(end) takes no {' or '.join(f'{n}=' for n in keywords)}", form)
        for key, node in keywords.items():
            if key in bound:
                raise self.fail(f"{name} is given {key} twice", form)
            bound[key] = node
        if numpy and "stop" not in bound:  # numpy.arange(stop): one number given by position is the stop
            if not args:
                raise self.fail(f"{name} needs its stop", form)
            bound["stop"] = bound.pop("start")
        end = names[1]
        if end not in bound or ("start" not in bound and "step" in bound and not numpy):
            raise self.fail(f"{name} takes ({end}), (start, {end}) or (start, {end}, step)", form)
        start, stop, step = (self.number(bound[n]) if n in bound else default for n, default in zip(names, (0, 0, 1)))
        numbers = (start, stop, step)
        if any(not -(2**63) <= n <= 2**63 - 1 for n in numbers):  # NaN compares False: refused too
            raise self.fail(f"{name} goes from {show(start)} to {show(stop)} by {show(step)}: its numbers must be "
                            "finite and within int64's range", form)  # fmt: skip
        if step == 0:
            raise self.fail(f"{name} has step 0", "use a step other than 0")
        if not numpy and ((step > 0 and stop < start) or (step < 0 and stop > start)):
            raise self.fail(f"{name} goes from {show(start)} to {show(stop)} with step {show(step)}, the wrong way "
                            "(torch refuses it)", "swap the bounds or change the step's sign")  # fmt: skip
        floats = any(isinstance(n, float) for n in numbers)
        whole = all(float(n).is_integer() for n in numbers)
        if dtype in INT64:
            if not whole:
                raise self.fail(f"{name} with dtype={dtype} cuts the fractions off its numbers",
                                "give whole numbers, or drop dtype=")
            floats = False
        if floats:  # the length torch and numpy compute, in float64
            count = max(0, math.ceil((float(stop) - float(start)) / float(step)))
        else:
            count = max(0, -((int(start) - int(stop)) // int(step)))  # ceil((stop - start) / step), exact
        # numpy's float64 values of whole numbers below 2**52 are exact, as int64's are (a start of -0. stays)
        exact64 = numpy and whole and max(map(abs, numbers)) <= 2**52 and math.copysign(1, start) > 0
        if dtype in FLOAT32 or (floats and not exact64):
            problem = _arange_float32_problem(start, step, count, numpy=numpy, numpy_float32=numpy and dtype in FLOAT32)
            if problem is not None:
                raise self.fail(f"{name}: {problem}", "give the numbers as a list, or a step such as 0.5 or 0.25")
            first = float(start) if numpy else float(start) + float(step) * 0.0  # numpy keeps a start of -0.
            return Generator("arange", check_shape((count,)), start=first, step=float(step))
        return Generator("arange", check_shape((count,)), start=int(start), step=int(step))

    def size(self, name: str, args: list[ast.expr], *, numpy: bool) -> tuple[int, ...]:
        """Sizes as torch takes them — ``(1, 4, 4)``, ``1, 4, 4`` or ``[1, 4, 4]`` — or numpy's one shape."""
        if not args:
            raise self.fail(f"{name} needs sizes", f"write e.g. {name}(1, 4, 4)")
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            values = [self.number(e) for e in args[0].elts]
        elif numpy and len(args) > 1:
            raise self.fail(f"{name} takes the shape as one tuple", f"write e.g. {name}((2, 3))")
        else:
            values = [self.number(a) for a in args]
        if not all(_is_int(v) and v >= 0 for v in values):
            raise self.fail(f"{name} has sizes {show(tuple(values))}, which are not whole numbers ≥ 0",
                            f"write e.g. {name}(1, 4, 4)")
        return check_shape(tuple(int(v) for v in values))

    def method_args(self, name: str, call: ast.Call) -> tuple:
        if call.keywords:
            raise self.fail(f".{name}() keywords are not understood", "give the sizes as numbers")
        values = tuple(self.value(a, 0) for a in call.args)
        if name in ("reshape", "view"):
            if len(values) == 1 and isinstance(values[0], list):
                values = tuple(values[0])
            if not values or not all(_is_int(v) for v in values):
                raise self.fail(f".{name}() takes whole-number sizes", f"write e.g. .{name}(1, 1, 4, 4)")
        elif name == "unsqueeze":
            if len(values) != 1 or not _is_int(values[0]):
                raise self.fail(".unsqueeze() takes one dimension", "write e.g. .unsqueeze(0)")
        elif values:
            raise self.fail(f".{name}() takes no arguments here", f"write .{name}()")
        return values

    # --- numbers, lists and tuples ------------------------------------------------------------------
    def number(self, node: ast.expr | None) -> Any:
        value = self.value(node, 0) if node is not None else None
        if not (_is_int(value) or isinstance(value, float)):
            raise self.fail(f"{show(value)} is not a number", "write a number")
        return value

    def value(self, node: ast.expr, depth: int) -> Any:
        kind = type(node)
        if kind is ast.Constant:
            value = node.value  # type: ignore[attr-defined]
            if value is Ellipsis:
                raise self.fail("the text holds '...', where torch or numpy left numbers out of a long tensor",
                                "print every number (torch.set_printoptions(profile='full')) or save it with numpy.save")
            return value  # bools, None and strings are judged by the nested-list reader, like JSON's
        if kind is ast.List or kind is ast.Tuple:
            if depth > MAX_DEPTH:
                raise InputError(f"{self.label} is nested more than {MAX_DEPTH} levels deep — a tensor has at most "
                                 f"{MAX_DEPTH} dimensions")
            out = []
            for element in node.elts:  # type: ignore[attr-defined]
                if type(element) is ast.Constant and element.value is not Ellipsis:
                    out.append(element.value)
                else:
                    out.append(self.value(element, depth + 1))
            return out
        if kind is ast.UnaryOp and isinstance(node.op, (ast.USub, ast.UAdd)):  # type: ignore[attr-defined]
            value = self.value(node.operand, depth)  # type: ignore[attr-defined]
            if not (_is_int(value) or isinstance(value, float)):
                raise self.fail(f"a sign is in front of {show(value)}, which is not a number")
            return -value if isinstance(node.op, ast.USub) else value  # type: ignore[attr-defined]
        if kind is ast.Dict:
            return self.document(node)  # type: ignore[arg-type]
        if kind is ast.Name:
            name = node.id  # type: ignore[attr-defined]
            if name in NAMES:
                return NAMES[name]
            raise self.fail(f"the name '{name}' is not allowed")
        if kind is ast.Attribute:
            name = dotted(node)
            if name in CONSTANTS:
                return CONSTANTS[name]
            raise self.fail(f"'{name or ast.unparse(node)[:40]}' is not allowed")
        if kind is ast.Call:
            name = self.callee(node)  # type: ignore[arg-type]
            if name == "float" and len(node.args) == 1 and not node.keywords:  # type: ignore[attr-defined]
                return self.float_call(node.args[0])  # type: ignore[attr-defined]
            raise self.fail(f"calling '{name}' is not allowed")
        if kind is ast.BinOp:
            raise self.fail("arithmetic is not allowed in a tensor", "write the numbers themselves (1e-3, not 1/1000)")
        raise self.fail(f"{_describe(node)} is not allowed")

    def float_call(self, node: ast.expr) -> float:
        value = self.value(node, 0)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(f"float({show(value)}) is not a number", "write float('nan'), float('inf') or a number")
        try:
            return float(value)
        except (ValueError, OverflowError):
            raise self.fail(f"float({show(value)}) is not a number",
                            "write float('nan'), float('inf') or a number") from None

    def document(self, node: ast.Dict) -> dict:
        if any(k is None or not isinstance(_constant(k), str) for k in node.keys):
            raise self.fail("a dict's keys must be strings such as 'data' and 'shape'", "write {'data': [...]}")
        return {_constant(k): self.value(v, 0) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]


def _dtype_text(node: ast.expr) -> str:
    """A ``dtype=`` as :meth:`_Reader.keyword` names it: ``torch.float32``, ``'float32'``, ``float``."""
    return dotted(node) or (repr(node.value) if isinstance(node, ast.Constant) else "")


def _arange_float32_problem(start: float, step: float, count: int, *, numpy: bool = False,
                            numpy_float32: bool = False) -> str | None:  # fmt: skip
    """Why the float32 values ``start + step·k`` (k < count) of an arange cannot be given exactly (None:
    they can). torch computes each in float64 and rounds it to float32 — the first of each vector
    directly, the others from that rounded first one, so a value float32 cannot hold comes out
    differently on CPUs of different vector widths: every value must be exact in float32 (and for numpy,
    whose float64 values cnnops would round, too). Numpy's float32 arange also adds and multiplies in
    float32: its start and each distance from the start must be whole multiples of one power of two
    within float32's 24 bits, and the count at most 2**24."""
    from fractions import Fraction

    if count == 0:
        return None
    first, delta = Fraction(start), Fraction(step)
    # the values are N·2**e (N whole, 2**e the largest power of two dividing start and step): N up to
    # 2**24 is exact; beyond it an exact N is even, and two neighbouring N are never both even (they differ
    # by an odd number, or every N is odd). So when the first two and the last two values are exact, so is
    # every value between them
    for k in sorted({k for k in (0, 1, count - 2, count - 1) if 0 <= k < count}):
        value = first + k * delta
        if not _exact_float32(value):
            why = "cnnops reads an arange of fractions only when every value is" if numpy else \
                "torch rounds such values differently on different CPUs"  # fmt: skip
            return f"its value {show(float(value))} is not exact in float32, and {why}"
    if numpy_float32:
        unit = Fraction(2) ** min(_twos(v) for v in (first, delta) if v)
        span = max(abs(first), abs(delta) * (count - 1)) / unit
        if span > 2**24 or count > 2**24:
            return "numpy makes a float32 arange in float32 steps, which round here"
    return None


def _exact_float32(value: Any) -> bool:
    """Whether a number (a Fraction) is exactly a float32."""
    import struct
    from fractions import Fraction

    try:
        as_double = float(value)
        return Fraction(as_double) == value and struct.unpack("f", struct.pack("f", as_double))[0] == as_double
    except OverflowError:  # beyond float64 or float32
        return False


def _twos(value: Any) -> int:
    """The exponent of the largest power of two that divides ``value`` (a nonzero Fraction of a power-of-two
    denominator, as every float is)."""
    p, q = value.numerator, value.denominator
    return ((p & -p).bit_length() - 1) - (q.bit_length() - 1)


def dotted(node: ast.expr) -> str | None:
    """``torch.nn.functional`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _constant(node: ast.expr) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(node: ast.expr | None, name: str) -> bool:
    """``x`` or ``print(x)``: a later line that only shows the tensor assigned to ``name``."""
    if isinstance(node, ast.Call) and dotted(node.func) == "print" and len(node.args) == 1:
        node = node.args[0]
    return isinstance(node, ast.Name) and node.id == name


def _describe(node: ast.AST) -> str:
    return {
        ast.Subscript: "a subscript", ast.Lambda: "a lambda", ast.Compare: "a comparison", ast.BoolOp: "'and'/'or'",
        ast.Set: "a set", ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator expression",
        ast.JoinedStr: "an f-string", ast.Starred: "a * argument", ast.IfExp: "an if-expression",
    }.get(type(node), "an expression")  # fmt: skip


# ---------------------------------------------------------------------------------------------- to arrays


def tensor_array(parsed: TensorText, label: str, *, seed: int = 0, max_elements: int = DEFAULT_MAX_ELEMENTS,
                 max_memory: int | None = None) -> np.ndarray:  # fmt: skip
    """The numbers of a generator, or of a wrapped list with ``.reshape(...)`` and friends after it
    (``max_memory``: a generator's budget, as :func:`~cnnops.io.generators.generate` takes it)."""
    import numpy as np

    if parsed.generator is not None:
        array = generate(parsed.generator, seed=seed if parsed.seed is None else parsed.seed,
                         max_elements=max_elements, max_memory=max_memory)  # fmt: skip
    else:
        if isinstance(parsed.doc, dict):
            raise InputError(f"{label}: a document {{'data': …}} takes no .{parsed.steps[0][0]}() — give the shape "
                             "in it: {'data': [...], 'shape': [...]}")
        array = to_array(parsed.doc, root="data", label=label, max_elements=max_elements)
    for name, args in parsed.steps:
        if name in ("reshape", "view"):
            array = _reshaped(array, args, name, label)
        elif name == "unsqueeze":
            dim = args[0]
            if not -array.ndim - 1 <= dim <= array.ndim:
                raise InputError(f"{label}: .unsqueeze({dim}) is out of range for {array.ndim} dimensions — use a "
                                 f"dimension from {-array.ndim - 1} to {array.ndim}")
            array = np.expand_dims(array, dim if dim >= 0 else array.ndim + 1 + dim)
        elif name == "flatten":
            array = array.reshape(-1)
    return array


def _reshaped(array: np.ndarray, sizes: tuple[int, ...], name: str, label: str) -> np.ndarray:
    count, unknown = array.size, [i for i, n in enumerate(sizes) if n == -1]
    known = math.prod(n for n in sizes if n != -1)
    if len(unknown) > 1 or any(n < -1 for n in sizes) or (count % known if known else count) or (
            not unknown and known != count):  # fmt: skip
        raise InputError(f"{label}: .{name}{show(sizes) if len(sizes) > 1 else f'({sizes[0]})'} does not fit "
                         f"{count} numbers — give sizes that multiply to {count} (one of them may be -1)")
    return array.reshape(sizes)


def tensor_value(text: str, label: str, *, error: type[CnnopsError] = InputError) -> Any:
    """Numbers for a weight, a bias or indices: the nested lists (or a number) the text holds, or an array
    when a constructor or ``.reshape(...)`` made them. Random generators are refused: only an input has
    a seed of its own."""
    try:
        return _numbers(parse_tensor_text(text, label), label)
    except InputError as exc:
        if error is InputError:
            raise
        raise error(str(exc)) from None


def node_value(node: ast.expr, label: str, *, error: type[CnnopsError] = InputError) -> Any:
    """The numbers an expression of another syntax tree holds — for the stage parser's ``weight=`` and
    ``bias=`` arguments (``weight=torch.tensor([[1., 0, -1.]])``) — as nested lists or a number, read by
    the same rules as tensor text.

    >>> node_value(ast.parse("torch.tensor([[1., float('nan')]]).reshape(2)", mode="eval").body, "weight")
    [1.0, nan]
    """
    try:
        reader = _Reader(label)
        reader.refuse_private(node)
        value = _numbers(reader.tensor(node), label)
        return value.tolist() if hasattr(value, "tolist") else value
    except InputError as exc:
        if error is InputError:
            raise
        raise error(str(exc)) from None


def _numbers(parsed: TensorText, label: str) -> Any:
    if parsed.random:
        raise InputError(f"{label} draws random numbers, which only an input can — give numbers, a "
                         ".json/.npy file or 'random'")
    if parsed.generator is not None or parsed.steps:
        return tensor_array(parsed, label)
    return parsed.doc
