"""Text → stages: the one parser for stage text and print(model) text (``parser``), over the table of
PyTorch's layer signatures (``signatures``). Never evaluates what it reads."""

from cnnops.spec.parser import looks_like_stage, parse_stage, parse_stage_file, parse_stages
from cnnops.spec.signatures import known_names

__all__ = ["looks_like_stage", "parse_stage", "parse_stage_file", "parse_stages", "known_names"]
