"""Which device a run trains and scores on: the names, their checks, and how a record names one.

    cpu    every framework; the default
    cuda   an NVIDIA GPU: PyTorch when its build sees one (``torch.cuda.is_available()``),
           TensorFlow when its installed build lists a GPU (``tensorflow-cpu`` never does)

A twin's ``use_device(name)`` (``impls/interface.py``) moves its work to the device, or raises
:class:`DeviceUnavailable` with one line saying what it sees and what is allowed; the command line
turns that into exit status 2 before anything is trained. All randomness stays NumPy-drawn per
seed and purpose (``ganrepro.seeding``), so a seed is the same experiment on every device; only
the arithmetic's rounding differs (``docs/agreement.md#cpu-vs-cuda``).

A record names its device twice: ``"device"`` is the short name above (what the store and the
report compare) and ``"device_info"`` the details (model, driver, library versions) of
:func:`cpu_info` or the twin's ``use_device``. Framework-free: nothing here imports a framework.
"""
from __future__ import annotations

import platform
from pathlib import Path

from .errors import UsageError

DEVICES = ("cpu", "cuda")
DEFAULT_DEVICE = "cpu"


class DeviceUnavailable(UsageError):
    """The device asked for is not usable by the framework asked for (exit 2): the message says why."""


def check_device(name: str) -> str:
    """``name`` if it is one of :data:`DEVICES`, else a ``UsageError`` naming it and what is allowed."""
    if name not in DEVICES:
        raise UsageError(f"unknown device {name!r}; allowed: {', '.join(DEVICES)}")
    return name


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s "model name", else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def nvidia_driver() -> str | None:
    """The NVIDIA kernel driver's version (``/proc/driver/nvidia/version``), or None where absent."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return word
    return None


def cpu_info() -> dict:
    """{"type": "cpu", "name": the CPU model, "machine": the architecture}: a CPU record's device_info."""
    return {"type": "cpu", "name": cpu_model(), "machine": platform.machine()}
