"""What the host CPU can do, where it changes a runtime's integer arithmetic.

ONNX Runtime (MLAS) and torch fbgemm compute uint8 x int8 dot products with ``vpmaddubsw`` on AVX2 CPUs,
which saturates pairs of products to int16, and exactly with VNNI (``vpdpbusd``) or AMX where available.
Not every kernel does (measured on an AVX2-only AMD Zen1): ONNX Runtime's depthwise kernel and its
ConvInteger (an s8 x u8 GEMM) are exact on any CPU; see ``Semantics.exact_depthwise``.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_int8_dot_product() -> bool:
    """True where u8 x s8 dot products are exact in ONNX Runtime and fbgemm (VNNI or AMX, or not x86)."""
    if platform.machine().lower() not in {"x86_64", "amd64", "i686", "x86"}:
        return True
    return bool(cpu_flags() & VNNI_FLAGS)


def has_avx512_vnni() -> bool:
    """True where hwsim's own int8 GEMM can use ``vpdpbusd`` on 512-bit registers (``kernels_simd``)."""
    return (
        platform.machine().lower() in {"x86_64", "amd64"}
        and {"avx512f", "avx512bw", "avx512_vnni"} <= cpu_flags()
    )


def has_avx2() -> bool:
    """True where hwsim's own integer GEMM can use ``vpmaddwd`` on 256-bit registers (``kernels_simd``)."""
    return platform.machine().lower() in {"x86_64", "amd64"} and "avx2" in cpu_flags()


def cpu_name() -> str:
    """The processor's model name, for benchmark reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores in /proc/cpuinfo (distinct physical id, core id pairs), else the logical CPU count:
    ONNX Runtime's default intra-op thread count, which decides how MLAS splits a float Conv into segments."""
    import os

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores, physical = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            physical = value.strip()
        elif key.strip() == "core id":
            cores.add((physical, value.strip()))
    return len(cores) or os.cpu_count() or 1
