"""Pictures of a run (Pillow, imported lazily): feature-map PNGs and the terminal preview (``maps``),
sliding-window GIFs (``animation``)."""
