"""Rich renderables and text documents: shape, formula and totals tables (``shape_tables``), the view
of a run (``run_view``) and tensors as grids of numbers (``tensor_grid``). Nothing here computes."""
