"""The twin implementations, one module per framework behind one interface (``interface.py``).

    torch_twin.py   PyTorch (eager)
    tf_twin.py      TensorFlow (whole training loop compiled with XLA)
    numpy_ref.py    float64 NumPy reference of every layer, loss and update (for the tests)

The image track's twins (docs/images.md) sit beside them: ``torch_image.py``, ``tf_image.py``
(interface: ``image_interface.py``), reference ``numpy_image_ref.py``.

Frameworks are imported only when asked for: ``get_backend("tf")`` is the first TensorFlow import.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

FRAMEWORKS = {"torch": ("torch", "ganrepro.impls.torch_twin"), "tf": ("tensorflow", "ganrepro.impls.tf_twin")}
IMAGE_TWINS = {"torch": "ganrepro.impls.torch_image", "tf": "ganrepro.impls.tf_image"}


class BackendUnavailable(RuntimeError):
    """The framework a backend needs is not installed."""


def available(framework: str) -> bool:
    """Whether ``framework``'s library is importable (checked without importing it)."""
    return framework in FRAMEWORKS and importlib.util.find_spec(FRAMEWORKS[framework][0]) is not None


def check_framework(framework: str) -> None:
    """Raise ValueError for an unknown name, BackendUnavailable for a missing library."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; allowed: {', '.join(FRAMEWORKS)}")
    if not available(framework):
        lib = FRAMEWORKS[framework][0]
        extra = "torch" if framework == "torch" else "tf"
        raise BackendUnavailable(f"framework {framework!r} needs the package {lib!r}, which is not installed; "
                                 f"install it with: pip install 'ganrepro[{extra}]'")


def get_backend(framework: str) -> ModuleType:
    """The twin module of ``framework`` ("torch" or "tf"), imported on first use."""
    check_framework(framework)
    return importlib.import_module(FRAMEWORKS[framework][1])


def get_image_backend(framework: str) -> ModuleType:
    """The image track's twin module of ``framework`` (``torch_image`` or ``tf_image``), imported on first use."""
    check_framework(framework)
    return importlib.import_module(IMAGE_TWINS[framework])


def check_device(framework: str, device: str) -> dict:
    """The device_info of ``device`` for ``framework``'s twin; ``DeviceUnavailable`` (exit 2) if it cannot use it.

    "cpu" is always usable and loads no framework; "cuda" imports the framework to ask it.
    """
    from ganrepro.devices import check_device as check_name
    from ganrepro.devices import cpu_info

    if check_name(device) == "cpu":
        return cpu_info()
    return get_backend(framework).use_device(device)
