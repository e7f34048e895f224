"""INT8 post-training quantization of exported graphs (installed as ``algm_export.calibration``).

- :mod:`.images`: calibration images and the data reader (the inference preprocessing).
- :mod:`.cache`: the statistics cache ``calibration.cache.json``, keyed by hashes of graph and images.
- :mod:`.scopes`: the ``--int8-scope`` values (light: imported by the command line's argument parser).
- :mod:`.recipe`: which MatMuls are quantized and how; the Q/DQ graphs for ONNX Runtime and TensorRT.
- :mod:`.int8`: the INT8 stage of ``algm-export MODEL --int8``.
"""
