"""Text → stages: the one parser for stage text (``parser``, with ``literals`` and ``aliases``), lists and
files of stages (``files``), print(model) text (``printed``), over the table of PyTorch's layer
signatures (``signatures``). Never evaluates what it reads."""

from cnnops.model.network import Network, Node
from cnnops.spec.files import looks_like_stage, parse_stage_file, parse_stages, read_stage_file
from cnnops.spec.parser import parse_layer, parse_nodes, parse_stage
from cnnops.spec.signatures import LayerData, known_names

__all__ = [
    "LayerData", "Network", "Node", "known_names", "looks_like_stage", "parse_layer", "parse_nodes", "parse_stage",
    "parse_stage_file", "parse_stages", "read_stage_file",
]  # fmt: skip
