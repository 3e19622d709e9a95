"""Networks for the planner tests: random chains PyTorch accepts (every layer kind cnnops plans, in place
or not) and small graphs (residual, dense, squeeze-excitation, U-Net with unpooling, multi-input merges), each
written twice: as torch stage text for :mod:`torchnet` and in cnnops' stage syntax."""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from torchnet import Spec

from cnnops.model.trace import trace_shapes
from cnnops.spec import parse_stages

ACTIVATIONS = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardswish", "Sigmoid", "Tanh", "Softplus"]
IN_PLACE = {"ReLU", "ReLU6", "LeakyReLU", "ELU", "SiLU", "Mish", "Hardswish"}


def _activation(draw: Any, rank: int) -> str:
    name = draw(st.sampled_from([*ACTIVATIONS, "Softmax", "LogSoftmax"]))
    if name in ("Softmax", "LogSoftmax"):
        return f"{name}(dim={draw(st.integers(-rank, rank - 1))})"
    if name in IN_PLACE and draw(st.booleans()):
        return f"{name}(inplace=True)"
    return f"{name}()"


def _dropout(draw: Any, nd: int, rank: int) -> str:
    name = draw(st.sampled_from((["Dropout1d"] if nd == 1 else ["Dropout2d"] if nd == 2 else []) + ["Dropout", "Identity"]))
    if name == "Identity":
        return "Identity()"
    return f"{name}(p={draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))}, inplace={draw(st.booleans())})"


def _spatial_stage(draw: Any, shape: tuple[int, ...], nd: int) -> list[str]:
    channels = shape[-nd - 1]
    kind = draw(st.sampled_from(["act", "conv", "bn", "maxpool", "drop", "conv", "avgpool", "unpool", "act", "convt",
                                 "adaptive", "bn", "drop"]))  # fmt: skip
    k = draw(st.integers(1, 3))
    if kind == "conv":
        k = draw(st.integers(1, 4))
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * draw(st.integers(1, 3))
        mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
        stride = draw(st.integers(1, 2))
        padding = draw(st.sampled_from(["0", "1", "'same'", "'valid'"] if stride == 1 else ["0", "1"]))
        dilation = draw(st.integers(1, 2))
        return [f"Conv{nd}d({channels}, {out}, {k}, stride={stride}, "
                f"padding={padding}, dilation={dilation}, groups={groups}, bias={draw(st.booleans())}, "
                f"padding_mode='{mode}')"]  # fmt: skip
    if kind == "convt":
        stride = draw(st.integers(1, 2))
        return [f"ConvTranspose{nd}d({channels}, {draw(st.integers(1, 4))}, {k}, stride={stride}, "
                f"padding={draw(st.integers(0, k // 2))}, output_padding={draw(st.integers(0, stride - 1))}, "
                f"bias={draw(st.booleans())})"]  # fmt: skip
    if kind in ("maxpool", "avgpool", "unpool"):
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, k // 2))
        if kind == "avgpool":
            return [f"AvgPool{nd}d({k}, stride={stride}, padding={padding}, ceil_mode={draw(st.booleans())}, "
                    f"count_include_pad={draw(st.booleans())})"]  # fmt: skip
        pool = f"MaxPool{nd}d({k}, stride={stride}, padding={padding}, dilation={draw(st.integers(1, 2))})"
        if kind == "maxpool":
            return [pool]
        between = [_activation(draw, len(shape))] if draw(st.booleans()) else []
        return [f"MaxPool{nd}d({k}, stride={stride}, padding={padding})", *between,
                f"MaxUnpool{nd}d({k}, stride={stride}, padding={padding})"]  # fmt: skip
    if kind == "adaptive":
        mode = draw(st.sampled_from(["Avg", "Max"]))
        size = draw(st.integers(1, 3))
        return [f"Adaptive{mode}Pool{nd}d({size})"]
    if kind == "bn":
        if len(shape) != nd + 2:
            return [_activation(draw, len(shape))]
        return [f"BatchNorm{nd}d({channels}, affine={draw(st.booleans())}, "
                f"track_running_stats={draw(st.booleans())})"]  # fmt: skip
    if kind == "drop":
        return [_dropout(draw, nd, len(shape))]
    return [_activation(draw, len(shape))]


def _flat_stage(draw: Any, shape: tuple[int, ...]) -> list[str]:
    kind = draw(st.sampled_from(["act", "linear", "bn", "drop", "linear"]))
    if kind == "linear":
        return [f"Linear({shape[-1]}, {draw(st.integers(1, 6))}, bias={draw(st.booleans())})"]
    if kind == "bn" and len(shape) == 2:
        return [f"BatchNorm1d({shape[-1]}, affine={draw(st.booleans())}, track_running_stats={draw(st.booleans())})"]
    if kind == "drop":
        return [_dropout(draw, 0, len(shape))]
    return [_activation(draw, len(shape))]


@st.composite
def chains(draw: Any) -> tuple[tuple[int, ...], list[str]]:
    """A chain PyTorch accepts: spatial layers, then perhaps Flatten and fully connected ones."""
    nd = draw(st.integers(1, 2))
    batched = draw(st.booleans())
    shape = (((draw(st.integers(1, 3)),) if batched else ()) + (draw(st.integers(1, 4)),)
             + tuple(draw(st.integers(3, 9)) for _ in range(nd)))  # fmt: skip
    texts: list[str] = []
    current, flat = shape, False
    for _ in range(draw(st.integers(2, 8))):
        if not flat and draw(st.sampled_from([False, False, False, False, False, True])):
            candidate = ["Flatten()"] if batched else ["Flatten(start_dim=0)"]
        else:
            candidate = _flat_stage(draw, current) if flat else _spatial_stage(draw, current, nd)
        trace = trace_shapes(shape, parse_stages(texts + candidate))
        if trace.error is None and 0 not in trace.output_shape:
            texts += candidate
            current, flat = trace.output_shape, flat or candidate[0].startswith("Flatten")
    assume(texts)
    return shape, texts


def residual(inplace: bool) -> tuple[list, list]:
    relu = "ReLU(inplace=True)" if inplace else "ReLU()"
    torch_specs = ["Conv2d(4, 8, 3, stride=2, padding=1, bias=False)", "BatchNorm2d(8)", relu,
                   "Conv2d(8, 8, 3, padding=1, bias=False)", "BatchNorm2d(8)",
                   Spec("Conv2d(4, 8, 1, stride=2, bias=False)", (0,)), "BatchNorm2d(8)", Spec("Add()", (7, 5)), relu]  # fmt: skip
    texts = ["Conv2d(4, 8, 3, stride=2, padding=1, bias=False)", "BatchNorm2d(8)", relu,
             "Conv2d(8, 8, 3, padding=1, bias=False)", "y=BatchNorm2d(8)", "Conv2d(4, 8, 1, stride=2, bias=False)(@input)",
             "BatchNorm2d(8)", "Add(@y)", relu]  # fmt: skip
    return torch_specs, texts


def dense(inplace: bool) -> tuple[list, list]:
    act = "LeakyReLU(inplace=True)" if inplace else "LeakyReLU()"
    torch_specs = ["Conv2d(4, 4, 3, padding=1)", act, Spec("Conv2d(4, 4, 1)", (2,)),
                   Spec("MaxPool2d(3, stride=1, padding=1)", (2,)), Spec("Cat()", (2, 3, 4)), "BatchNorm2d(12)",
                   "ReLU()", "Conv2d(12, 6, 1)", Spec("Cat(dim=1)", (8, 5))]  # fmt: skip
    texts = ["Conv2d(4, 4, 3, padding=1)", f"a={act}", "b=Conv2d(4, 4, 1)", "c=MaxPool2d(3, stride=1, padding=1)(@a)",
             "d=Cat(@a, @b, @c)", "BatchNorm2d(12)", "ReLU()", "Conv2d(12, 6, 1)", "Cat(@d)"]  # fmt: skip
    return torch_specs, texts


def squeeze_excite(inplace: bool) -> tuple[list, list]:
    relu = "ReLU(inplace=True)" if inplace else "ReLU()"
    torch_specs = ["Conv2d(4, 8, 3, padding=1)", relu, "AdaptiveAvgPool2d(1)", "Conv2d(8, 2, 1)", relu,
                   "Conv2d(2, 8, 1)", "Sigmoid()", Spec("Mul()", (2, 7)), Spec("Add()", (8, 2))]  # fmt: skip
    texts = ["Conv2d(4, 8, 3, padding=1)", f"x={relu}", "AdaptiveAvgPool2d(1)", "Conv2d(8, 2, 1)", relu,
             "Conv2d(2, 8, 1)", "Sigmoid()", "Mul(@x)", "Add(@x)"]  # fmt: skip
    return torch_specs, texts


def unet(inplace: bool) -> tuple[list, list]:
    relu = "ReLU(inplace=True)" if inplace else "ReLU()"
    torch_specs = ["Conv2d(4, 6, 3, padding=1)", relu, "MaxPool2d(2)", "Conv2d(6, 6, 3, padding=1)", relu,
                   "MaxUnpool2d(2)", Spec("Cat()", (6, 2)), "Conv2d(12, 4, 3, padding='same')", "Dropout2d(0.2)",
                   Spec("Linear(256, 10)", flatten=True)]  # fmt: skip
    texts = ["Conv2d(4, 6, 3, padding=1)", f"skip={relu}", "MaxPool2d(2)", "Conv2d(6, 6, 3, padding=1)", relu,
             "MaxUnpool2d(2)", "Cat(@skip)", "Conv2d(12, 4, 3, padding='same')", "Dropout2d(0.2)", "Linear(256, 10)"]  # fmt: skip
    return torch_specs, texts


def merges(inplace: bool) -> tuple[list, list]:
    act = "ELU(inplace=True)" if inplace else "ELU()"
    torch_specs = ["Conv2d(4, 4, 3, padding=1)", act, Spec("Mul()", (2, 0, 2)), Spec("Add()", (3, 1, 0)),
                   Spec("Linear(8, 1)", (0,)), Spec("Mul()", (5, 4)), "Softmax(dim=1)"]  # fmt: skip
    texts = ["Conv2d(4, 4, 3, padding=1)", act, "Mul(@2, @input, @2)", "Add(@3, @1, @input)", "Linear(8, 1)(@input)",
             "Mul(@5, @4)", "Softmax(dim=1)"]  # fmt: skip
    return torch_specs, texts


GRAPHS = {"residual": residual, "dense": dense, "squeeze-excite": squeeze_excite, "unet": unet, "merges": merges}




@st.composite
def graphs(draw: Any) -> tuple[tuple[int, ...], list[Spec], list[str]]:
    """A random graph PyTorch accepts: each stage reads an earlier output (or merges several of one shape);
    outputs nobody reads, tensors read by many stages and in-place layers on shared tensors all occur."""
    channels, side = draw(st.integers(1, 4)), draw(st.integers(4, 8))
    shape = (draw(st.integers(1, 3)), channels, side, side)
    outputs = [shape]  # output number -> shape (0: the input)
    torch_specs: list[Spec] = []
    texts: list[str] = []
    for number in range(1, draw(st.integers(2, 9)) + 1):
        source = draw(st.integers(0, number - 1))
        same = [i for i, s in enumerate(outputs) if s == outputs[source] and i != source]
        if same and draw(st.sampled_from([False, False, True])):
            refs = (source, *draw(st.lists(st.sampled_from(same), min_size=1, max_size=2)))
            op = draw(st.sampled_from(["Add", "Mul", "Cat"]))
            text = f"{op}({', '.join('@input' if r == 0 else f'@{r}' for r in refs)})"
            torch_specs.append(Spec(f"{op}()", refs))
        else:
            c = outputs[source][1]
            text = draw(st.sampled_from([
                f"Conv2d({c}, {draw(st.integers(1, 4))}, 3, padding=1)", f"Conv2d({c}, {c}, 1, bias=False)",
                "ReLU()", "ReLU(inplace=True)", "Sigmoid()", "LeakyReLU(inplace=True)", "SiLU(inplace=True)",
                f"BatchNorm2d({c})", "MaxPool2d(3, stride=1, padding=1)", "AvgPool2d(3, stride=1, padding=1)",
                "Dropout(0.5)", "Dropout2d(0.5, inplace=True)", "Identity()", "AdaptiveAvgPool2d(1)",
            ]))  # fmt: skip
            torch_specs.append(Spec(text, (source,)))
            text = f"{text}(@{'input' if source == 0 else source})"
        trace = trace_shapes(shape, parse_stages([*texts, text]))
        assume(trace.error is None)
        texts.append(text)
        outputs.append(trace.output_shape)
    return shape, torch_specs, texts
