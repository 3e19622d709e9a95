"""Write examples/tiny.onnx: a small digit classifier as an ONNX graph, made with the onnx package alone
(no torch, no download). Conv 3×3 → ReLU → max pool → Conv 3×3 (stride 2) → ReLU → global average pool →
flatten → Gemm, on a 1×1×28×28 input; the weights are a fixed pattern, so the file is the same on every run.

Run from the repository root:  python examples/make_tiny_onnx.py
"""

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def weights(name: str, dims: list[int]) -> onnx.TensorProto:
    count = 1
    for d in dims:
        count *= d
    values = [((i * 37) % 17 - 8) / 64 for i in range(count)]  # a fixed pattern, not a trained model
    return helper.make_tensor(name, TensorProto.FLOAT, dims, values)


def tiny_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["c1"], name="/conv1/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/Relu"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="/conv2/Conv",
                         kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="/Relu_1"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    initializers = [weights("conv1.weight", [8, 1, 3, 3]), weights("conv1.bias", [8]),
                    weights("conv2.weight", [16, 8, 3, 3]), weights("conv2.bias", [16]),
                    weights("fc.weight", [10, 16]), weights("fc.bias", [10])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], initializers)
    model = helper.make_model(graph, producer_name="cnnops examples", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    path = Path(__file__).resolve().parent / "tiny.onnx"
    path.write_bytes(tiny_model().SerializeToString())
    print(f"wrote {path}")
