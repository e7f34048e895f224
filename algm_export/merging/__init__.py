"""ALGM token merging: slot assignment (CLAP, GBM) and the ``algm`` torch custom ops."""
