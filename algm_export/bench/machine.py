"""The machine a speed table was measured on, for the record."""

from __future__ import annotations

import platform
from pathlib import Path

import onnxruntime as ort
import torch

SIMD_FLAGS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx_vnni", "AVX-VNNI"), ("avx512_vnni", "AVX-512 VNNI"),
              ("amx_int8", "AMX-INT8"))  # /proc/cpuinfo flag -> name; VNNI/AMX are what make INT8 GEMMs fast


def machine_description() -> str:
    """CPU model, its SIMD extensions for FP32/INT8 GEMMs, and thread counts, for the record."""
    cpu, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
        flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    if flags:
        simd = [name for flag, name in SIMD_FLAGS if flag in flags]
        vnni = "" if flags & {"avx_vnni", "avx512_vnni", "amx_int8"} else ", no VNNI"
        cpu = f"{cpu} ({', '.join(simd) or 'no AVX2'}{vnni})"
    return f"{cpu}; torch threads {torch.get_num_threads()}; onnxruntime {ort.__version__}; torch {torch.__version__}"
