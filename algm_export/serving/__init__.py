"""Serving: a Triton model repository from an exported folder (``algm-export triton``), a Triton server on
this machine through PyTriton (``algm-export serve``) and its client (``algm-export predict --server``)."""
