"""A hypothesis strategy that writes random small nn.Module files: chains with merges, as the tests
compare the static reader, --model and torch on them."""

from hypothesis import strategies as st


@st.composite
def model_files(draw):
    """A small nn.Module file: a chain of conv / pool / activation / norm steps with residual adds, channel
    concatenations, squeeze-excitation products and chunk/cat, then a flatten and a Linear head."""
    channels, size = draw(st.integers(1, 4)), draw(st.integers(6, 14))
    init, forward = [], []
    c, h = channels, size
    for step in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "pool", "act", "bn", "residual", "concat", "gate", "split"]))
        name = f"l{step}"
        if kind == "conv":
            out, k = draw(st.integers(1, 6)), draw(st.integers(1, 3))
            stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, k // 2))
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0 and out % g == 0]))
            init.append(f"self.{name} = nn.Conv2d({c}, {out}, {k}, stride={stride}, padding={pad}, groups={groups})")
            forward.append(f"x = self.{name}(x)")
            c, h = out, (h + 2 * pad - k) // stride + 1
        elif kind == "pool":
            k = draw(st.integers(1, 3))
            ceil = draw(st.booleans())
            call = draw(st.sampled_from([f"F.max_pool2d(x, {k}, ceil_mode={ceil})", f"self.{name}(x)"]))
            init.append(f"self.{name} = nn.AvgPool2d({k}, ceil_mode={ceil})")
            forward.append(f"x = {call}")
            h = -(-(h - k) // k) + 1 if ceil and (h - k) % k and ((h - k) // k + 1) * k < h else (h - k) // k + 1
        elif kind == "act":
            forward.append("x = " + draw(st.sampled_from(["F.relu(x)", "torch.sigmoid(x)", "x.tanh()", f"self.{name}(x)",
                                                          "F.gelu(x)", "F.leaky_relu(x, 0.2)"])))
            init.append(f"self.{name} = nn.ReLU6(inplace={draw(st.booleans())})")
        elif kind == "bn":
            init.append(f"self.{name} = nn.BatchNorm2d({c})")
            forward.append(f"x = self.{name}(x)")
        elif kind == "residual":
            init.append(f"self.{name} = nn.Conv2d({c}, {c}, 3, padding=1)")
            forward.append(draw(st.sampled_from([f"x = x + self.{name}(x)", f"y = self.{name}(x)\n        y += x\n        x = y"])))
        elif kind == "concat":
            out = draw(st.integers(1, 4))
            init.append(f"self.{name} = nn.Conv2d({c}, {out}, 1)")
            forward.append(f"x = torch.cat([x, self.{name}(x)], {draw(st.sampled_from(['1', 'dim=1', 'dim=-3']))})")
            c += out
        elif kind == "gate":
            init.append(f"self.{name} = nn.Conv2d({c}, {c}, 1)")
            forward.append(f"x = x * torch.sigmoid(self.{name}(F.adaptive_avg_pool2d(x, 1)))")
        elif kind == "split" and c >= 2:
            init.append(f"self.{name} = nn.Conv2d({c - c // 2}, {c - c // 2}, 1)")
            forward.append(f"a, b = x.split([{c // 2}, {c - c // 2}], dim=1)\n        x = torch.cat((a, self.{name}(b)), dim=1)")
    head = draw(st.sampled_from(["x = torch.flatten(x, 1)", "x = x.view(x.size(0), -1)", "x = x.mean((2, 3))"]))
    features = c if "mean" in head else c * max(h, 1) ** 2
    init.append(f"self.head = nn.Linear({features}, {draw(st.integers(1, 5))})")
    forward += [head, "return self.head(x)"]
    text = ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\nclass Net(nn.Module):\n"
            "    def __init__(self):\n        super().__init__()\n" + "".join(f"        {line}\n" for line in init) +
            "\n    def forward(self, x):\n" + "".join(f"        {line}\n" for line in forward))  # fmt: skip
    return text, (draw(st.integers(1, 2)), channels, size, size)
