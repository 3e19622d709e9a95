"""The shape model, pure Python: layers as dataclasses (``stages``), PyTorch's length formulas
(``arithmetic``), a whole network traced shape by shape (``trace``), the sliding windows each output
reads (``windows``) and the inverse question, which settings give a wanted length (``solve``)."""
