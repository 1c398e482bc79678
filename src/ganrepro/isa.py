"""One instruction set on every x86-64 CPU: the pin that makes stored numbers CPU-independent.

The same seed must give the same bytes on an AVX2-only machine and on one with AVX-512. Every
library below picks its kernels at run time by the CPU's widest vector ISA, and kernels of
different widths round differently (a vectorised exp, a reduction split into other partial
sums); the chaotic sensitivity of GAN training (docs: the agreement ladder) then turns one
last-bit difference into a different outcome for some seeds. The pin caps every such choice at
**x86-64-v3** (AVX2 + FMA), the ISA every supported CPU has:

=====================  ==========================================  ==============================
library                what picks the kernel                       the pin
=====================  ==========================================  ==============================
NumPy                  dispatch of ufuncs (exp, log, sort, ...)    ``NPY_DISABLE_CPU_FEATURES``:
                       to X86_V3 / X86_V4 / AVX512_ICL / _SPR      every target above X86_V3
XLA (TensorFlow)       LLVM code generation for the host CPU       ``XLA_FLAGS=--xla_cpu_max_isa=AVX2``
oneDNN (TF, PyTorch)   JIT kernels for the host CPU                ``ONEDNN_MAX_CPU_ISA=AVX2``
MKL (PyTorch's vector  code path per CPU vendor and width         ``MKL_CBWR=COMPATIBLE`` (the
math, BLAS)                                                        branch that is the same on
                                                                   Intel and AMD), PyTorch's
                                                                   matmul included
ATen (PyTorch)         SIMD kernels (and their scalar tails)       ``ATEN_CPU_CAPABILITY=default``
                                                                   (set by the PyTorch twin)
Inductor (PyTorch)     vector width and ``-march`` of the C++      ``cpp.simdlen=256``,
                       kernels it compiles                         ``cpp.march=x86-64-v3``
                                                                   (:data:`INDUCTOR_OPTIONS`)
OpenBLAS (NumPy's      kernel per core type                        ``OPENBLAS_CORETYPE=Haswell``
BLAS and LAPACK)                                                   (the image track's metrics and
                                                                   classifier use NumPy's matmul;
                                                                   the 1D track's numbers do not)
=====================  ==========================================  ==============================

Two things the pin cannot reach, so the twins avoid them: MKL's vector square root, whose last bit
depends on the CPU's vendor whatever ``MKL_CBWR`` says (the PyTorch twins take NumPy's instead,
``torch_twin._sqrt``), and the order in which a library adds a large matrix product's terms, which it
picks by CPU model (the image twins' float32 products are exact products, ``numpy_exact_product``).
A committed report that a CPU is still known not to regenerate is listed in
:data:`KNOWN_REPORT_DIFFERENCES` (none is).

The environment variables must be in place before each library loads, so :func:`pin` runs when
``ganrepro`` is first imported (``ganrepro/__init__.py``), before anything imports NumPy; the
``ganrepro`` command and its worker processes (which inherit the environment) are always pinned.
A program that imported NumPy before ``ganrepro`` keeps NumPy's widest kernels: :func:`status`
says so and :func:`warn_if_unpinned` warns. A variable the user already set is left alone
(``XLA_FLAGS`` gains the cap unless it names one).

``GANREPRO_NATIVE_ISA=1`` turns the pin off (every library uses the CPU's widest ISA; runs are
still deterministic on one machine, but their last bits then depend on the CPU).

Framework-free and NumPy-free: this module is imported before NumPy.
"""
from __future__ import annotations

import os
import platform
import warnings

NATIVE_ENV = "GANREPRO_NATIVE_ISA"
"""Set to 1 to run with every library's widest kernels (no pin)."""

NUMPY_DISABLED = ("X86_V4", "AVX512_ICL", "AVX512_SPR")
"""NumPy's (2.x) dispatch targets above X86_V3; disabling a target the CPU lacks is a no-op."""

NUMPY_ALLOWED_TARGETS = ("X86_V3",)
"""The dispatch targets NumPy may keep (AVX2 + FMA)."""

XLA_CAP = "--xla_cpu_max_isa=AVX2"

PINNED_ENV = {
    "NPY_DISABLE_CPU_FEATURES": " ".join(NUMPY_DISABLED),
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Haswell",
}
"""Variables the pin sets when the user has not (``XLA_FLAGS`` is handled apart: it is a list)."""

INDUCTOR_OPTIONS = {"cpp.simdlen": 256, "cpp.march": "x86-64-v3"}
"""``torch.compile`` options of the pinned Inductor kernels: AVX2 vectors, x86-64-v3 code."""

REQUIRED_CPU_FLAGS = ("avx2", "fma")
"""The CPU features (``/proc/cpuinfo`` names) the pin assumes: x86-64-v3's vector part."""


def _cpuinfo_field(name: str) -> str:
    """The first value of ``name`` in ``/proc/cpuinfo`` ("" where the field or the file does not exist)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where that file does not exist)."""
    return frozenset(_cpuinfo_field("flags").split())


def cpu_vendor_family() -> tuple[str, int]:
    """(vendor, family) of the CPU from ``/proc/cpuinfo``, e.g. ("GenuineIntel", 6), ("AuthenticAMD", 26)
    (an AMD Zen 5); ("", -1) where it does not say."""
    family = _cpuinfo_field("cpu family")
    return _cpuinfo_field("vendor_id"), int(family) if family.isdigit() else -1


KNOWN_REPORT_DIFFERENCES: dict[str, dict[tuple[str, int], str]] = {}
"""{grid: {(vendor, family): why}}: the committed ``reports/<grid>`` that a CPU is known *not* to regenerate
byte for byte, despite the pin. The byte comparisons (``tests/test_isa.py``, ``.ci/run``) expect a difference
there, and fail if there is none (so a fix shows). Empty: the one entry there was, ``image-smoke`` on an AMD
Zen 5 (family 26), went with the image track's exact products and correctly rounded square roots
(docs/images.md#products)."""


def known_report_difference(grid: str) -> str | None:
    """Why this CPU is known not to regenerate the committed ``reports/<grid>`` byte for byte, or None."""
    return KNOWN_REPORT_DIFFERENCES.get(grid, {}).get(cpu_vendor_family())


def native_requested() -> bool:
    """Whether the user turned the pin off (``GANREPRO_NATIVE_ISA`` set to 1, yes or true)."""
    return os.environ.get(NATIVE_ENV, "").strip().lower() in ("1", "yes", "true")


def supported_cpu() -> bool:
    """Whether this is an x86-64 CPU with AVX2 and FMA, the CPUs the byte-identity claim covers."""
    machine = platform.machine().lower()
    return machine in ("x86_64", "amd64") and all(f in cpu_flags() for f in REQUIRED_CPU_FLAGS)


def pinned() -> bool:
    """Whether the pin is in force in this process: a supported CPU and not turned off."""
    return supported_cpu() and not native_requested()


def pin() -> bool:
    """Set the environment of the pin (see the module docstring); return whether it is in force.

    Idempotent. Must run before NumPy, TensorFlow or PyTorch is imported to take effect on them;
    :func:`status` tells afterwards what took effect.
    """
    if not pinned():
        return False
    for key, value in PINNED_ENV.items():
        os.environ.setdefault(key, value)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_max_isa" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_CAP}".strip()
    return True


def numpy_targets() -> dict[str, bool]:
    """NumPy's dispatch targets and whether each is active (imports NumPy)."""
    import importlib

    # a private module NumPy's type stubs do not describe; it is where NumPy lists its dispatch targets
    umath = importlib.import_module("numpy._core._multiarray_umath")

    return {name: bool(umath.__cpu_features__.get(name, False)) for name in umath.__cpu_dispatch__}


def status() -> dict:
    """What the pin achieved in this process, for records and ``ganrepro --version``.

    ``{"pinned": bool, "cpu_supported": bool, "numpy": [active dispatch targets], "numpy_pinned": bool,
    "xla_flags": str, "reason": str}``; ``pinned`` is true only when every library is capped.
    """
    targets = numpy_targets()
    active = [name for name, on in targets.items() if on]
    numpy_ok = all(name in NUMPY_ALLOWED_TARGETS for name in active)
    supported = supported_cpu()
    if native_requested():
        reason = f"{NATIVE_ENV} is set: every library uses this CPU's widest kernels"
    elif not supported:
        reason = "this CPU is not x86-64 with AVX2 and FMA: numbers may differ from other CPUs in the last bits"
    elif not numpy_ok:
        reason = ("NumPy was imported before ganrepro, with its " + ", ".join(a for a in active if a not in
                  NUMPY_ALLOWED_TARGETS) + " kernels: import ganrepro first, or set NPY_DISABLE_CPU_FEATURES='"
                  + PINNED_ENV["NPY_DISABLE_CPU_FEATURES"] + "'")
    else:
        reason = "every library capped at x86-64-v3 (AVX2 + FMA)"
    return {"pinned": supported and not native_requested() and numpy_ok, "cpu_supported": supported,
            "numpy": active, "numpy_pinned": numpy_ok, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "reason": reason}


_warned = False


def warn_if_unpinned() -> None:
    """Warn once (RuntimeWarning) if the pin is not in force although the CPU supports it."""
    global _warned
    if _warned or native_requested():
        return
    info = status()
    if not info["pinned"]:
        _warned = True
        warnings.warn(f"ganrepro: results may depend on this CPU: {info['reason']}", RuntimeWarning, stacklevel=2)


def describe() -> str:
    """One line: whether the pin is in force, and why not; the committed reports this CPU is known not to
    regenerate byte for byte, if any (:data:`KNOWN_REPORT_DIFFERENCES`)."""
    info = status()
    text = "pinned to x86-64-v3 (AVX2 + FMA) on every CPU" if info["pinned"] else f"not pinned: {info['reason']}"
    known = [f"reports/{grid}" for grid in KNOWN_REPORT_DIFFERENCES if known_report_difference(grid)]
    if known:
        text += (f"; known not to regenerate {', '.join(known)} byte for byte on this CPU "
                 "(README, 'The same bytes on every x86-64 CPU')")
    return text
