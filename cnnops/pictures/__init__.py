"""Pictures of a run (Pillow, imported lazily): feature-map PNGs (``maps``), the terminal preview
(``preview``) and sliding-window GIFs (``animation``), drawn with shared pieces: ``planes`` (which
tensors, which planes), ``colour`` (colour maps), ``font`` (lettering), ``canvas`` (margin, header,
atomic write) and ``grid`` (numbered cells of the GIF frames)."""
