"""The GPU check run by tools/gpu_check.sh (``python -m gpu_check`` with tools/ on the path); see __main__."""
