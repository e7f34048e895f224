"""ONNX export: the algm node contract, standard-op lowering, graph edits, FP16 conversion."""
