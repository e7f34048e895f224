"""Parity of exported graphs/engines with PyTorch, polygraphy artifacts, and the report."""
