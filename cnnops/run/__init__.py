"""Running tensors through stages: one tensor with an engine (``pipeline``), many inputs one after
another (``runner``, which yields results and never prints)."""
