"""hwface: hardware-aware compilation and latency modeling for lightweight face-recognition CNNs."""

__version__ = "0.4.0"
