"""The algm op contract's shared constants, read from ``ops_contract.json`` (also the source of the C++
header ``algm/contract.h``). Standard library only: the PyTorch ops, the ONNX functions and the
runtimes import it without pulling in onnx."""

from __future__ import annotations

import json
from importlib import resources

CONTRACT: dict = json.loads(resources.files(__package__).joinpath("ops_contract.json").read_text())

DOMAIN: str = CONTRACT["domain"]
PLUGIN_VERSION: str = CONTRACT["plugin_version"]
PLUGIN_NAMESPACE: str = CONTRACT["plugin_namespace"]
NORM_EPSILON: float = CONTRACT["norm_epsilon"]
OP_NAMES: tuple[str, ...] = tuple(CONTRACT["ops"])  # also the TensorRT plugin names
SIZES_OUTPUT = "merged_sizes"  # the merge ops' token sizes: float, kept in FP32 in the FP16 graph


def output_index(op: str, name: str) -> int:
    """The position of output ``name`` of ``op``."""
    return CONTRACT["ops"][op]["outputs"].index(name)


def attributes(op: str) -> dict[str, str]:
    """The attributes of ``op`` (name -> "int" or "float"), as the kernels and plugins read them."""
    return dict(CONTRACT["ops"][op]["attributes"])
