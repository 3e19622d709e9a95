"""Parameter breakdowns: each stage's weight and bias shapes are torch's named_parameters(), and add up."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch  # noqa: F401  (the eval below builds torch.nn modules)
from hypothesis import given, settings
from hypothesis import strategies as hs

from cnnops.render.shape_tables import param_breakdown
from cnnops.spec import parse_stage

ROOT = Path(__file__).resolve().parent.parent


@hs.composite
def layer_texts(draw):
    kind = draw(hs.sampled_from(["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Linear", "BatchNorm2d"]))
    bias = draw(hs.booleans())
    if kind == "Linear":
        return f"Linear({draw(hs.integers(0, 9))}, {draw(hs.integers(0, 9))}, bias={bias})"
    if kind == "BatchNorm2d":
        return f"BatchNorm2d({draw(hs.integers(1, 9))}, affine={draw(hs.booleans())})"
    groups = draw(hs.integers(1, 3))
    cin, cout = groups * draw(hs.integers(1, 3)), groups * draw(hs.integers(1, 3))
    return f"{kind}({cin}, {cout}, {draw(hs.integers(1, 4))}, groups={groups}, bias={bias})"


@settings(max_examples=80, deadline=None, derandomize=True)
@given(text=layer_texts())
def test_param_shapes_are_torchs_named_parameters(text):
    stage = parse_stage(text)
    module = eval(f"torch.nn.{text}")  # test-only oracle built from the same text
    expected = [(name, tuple(p.shape)) for name, p in module.named_parameters()]
    assert stage.param_shapes() == expected
    assert sum(math.prod(shape) for _, shape in expected) == stage.params()


@pytest.mark.parametrize("text, breakdown", [
    ("Conv2d(3, 5, 3)", "weight 5×3×3×3 = 135 + bias 5 = 140"),
    ("Conv2d(3, 5, 3, bias=False)", "weight 5×3×3×3 = 135"),
    ("Linear(3, 4)", "weight 4×3 = 12 + bias 4 = 16"),
    ("BatchNorm2d(5)", "weight 5 + bias 5 = 10"),
    ("ReLU", ""),
])  # fmt: skip
def test_breakdown_text(text, breakdown):
    assert param_breakdown(parse_stage(text)) == breakdown


def test_shape_json_has_weight_and_bias_shapes_beside_the_old_keys():
    out = subprocess.run([sys.executable, "-m", "cnnops", "shape", "1x3x8x8", "Conv2d(3, 5, 3)", "relu", "--json"],
                         cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
    conv, relu = json.loads(out.stdout)["stages"]
    assert conv["weight_shape"] == [5, 3, 3, 3] and conv["bias_shape"] == [5] and conv["params"] == 140
    assert "weight_shape" not in relu and "bias_shape" not in relu
