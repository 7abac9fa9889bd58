"""Thin argparse commands over the typed Python API."""
