"""Text → stages: the one parser for stage text and print(model) text (``parser``), over the table of
PyTorch's layer signatures (``signatures``). Never evaluates what it reads."""

from cnnops.spec.parser import (
    Network,
    looks_like_stage,
    parse_layer,
    parse_stage,
    parse_stage_file,
    parse_stages,
    read_stage_file,
)
from cnnops.spec.signatures import LayerData, known_names

__all__ = ["LayerData", "Network", "parse_layer", "looks_like_stage", "parse_stage", "parse_stage_file", "parse_stages", "known_names", "read_stage_file"]
