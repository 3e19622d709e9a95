"""Tensors in and out of files: one reader of nested lists (``nested``), JSON text (``jsontext``), one
reader of tensor text in JSON or Python (``literal``), constructed and random tensors with torch's
numbers (``generators``), inputs from files, stdin and inline text (``read``), images (``images``),
atomic writes (``write``), the steps a stop signal must not cut in two (``deferral``), and the named
kernels and weight specs of convolutions (``kernels``, ``weights``).

numpy, PIL and orjson are imported inside the functions that need them, so importing this package
costs nothing for ``cnnops shape`` and ``--help``."""
