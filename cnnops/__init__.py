"""cnnops: a command-line calculator for the layers of convolutional networks."""

__version__ = "0.1.0"
