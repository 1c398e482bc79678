"""The instruction-set pin (``ganrepro/isa.py``): the same bytes on every supported x86-64 CPU.

Three kinds of check:

- the pin is in force in this test process and in the ``ganrepro`` command (NumPy's AVX-512
  dispatch off, XLA and oneDNN capped at AVX2, MKL on its vendor-independent branch);
- a workload that reaches every library the pin governs (NumPy's exp/log/sort in the metrics,
  XLA-compiled TF training, PyTorch's eager kernels and MKL, TorchInductor's kernels of the
  minibatch layer at B = 96) gives identical bytes in a process on this CPU as it is and in a
  process that sees an AVX2-only CPU (every library's own switch for that, plus OpenBLAS's core
  type and glibc's hardware capabilities); and, on an AVX-512 CPU, *different* bytes with the
  pin turned off (``GANREPRO_NATIVE_ISA=1``), which shows the workload can see the difference;
- the smoke reports of both tracks, swept and built in an AVX2-only process, equal the committed
  ``reports/smoke`` and ``reports/image-smoke`` byte for byte (CI builds them again on the CPU it
  has and compares too).
"""
from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganrepro import isa

REPO = Path(__file__).resolve().parents[1]

AVX2_ONLY_ENV = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512DQ,-AVX512VL,-AVX512BW,-AVX512CD,-AVX512ER,-AVX512PF",
}
"""What a process sees of an AVX2-only CPU: each library's own switch, set before it loads."""

needs_supported_cpu = pytest.mark.skipif(not isa.supported_cpu(), reason="not an x86-64 CPU with AVX2 and FMA")

WORKLOAD = r"""
import hashlib, json, sys
from ganrepro import isa, records  # first: the pin precedes NumPy
import numpy as np
from ganrepro.config import make_config
from ganrepro.training import train

digest = hashlib.sha256()
cases = [("2016", False, "torch", {}), ("2017", True, "torch", {"batch_size": 96, "num_steps": 40}),
         ("2016", True, "tf", {}), ("2017", True, "tf", {"num_steps": 600})]
for protocol, minibatch, framework, overrides in cases:
    config = make_config(protocol, minibatch=minibatch, seeds=(0, 1), **{"num_steps": 300, **overrides})
    output = train(config, framework)
    for array in (output.samples_uniform, output.boundary, output.curves):
        digest.update(np.ascontiguousarray(array).tobytes())
    for record in records.score(output):
        digest.update(records.dumps(records.metrics_only(record)).encode())
# the image track: the exact products (NumPy's float64 BLAS under PyTorch on the CPU, XLA in TF), MKL's
# vector math, XLA, and NumPy's BLAS in the
# classifier (trained here: GANREPRO_CACHE is a fresh folder) and in the Parzen window
from ganrepro.image.config import ImageConfig
from ganrepro.image.training import train as train_image
for model, framework in (("dcgan", "torch"), ("dcgan", "tf")):
    output = train_image(ImageConfig(model=model, seeds=(0, 1), num_steps=20, checkpoint_interval=10), framework)
    for array in (output.samples, output.checkpoints, output.curves):
        digest.update(np.ascontiguousarray(array).tobytes())
    for record in records.score(output):
        digest.update(records.dumps(records.metrics_only(record)).encode())
print(json.dumps({"digest": digest.hexdigest(), "isa": isa.status()}))
"""


def _environment(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in AVX2_ONLY_ENV and k not in isa.PINNED_ENV and k != isa.NATIVE_ENV}
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def _run_workload(extra: dict) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", WORKLOAD], env=_environment({**extra, "GANREPRO_CACHE": cache}),
                              capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_supported_cpu
def test_pin_is_in_force_in_the_test_process():
    info = isa.status()
    assert info["pinned"], info["reason"]
    assert set(info["numpy"]) <= set(isa.NUMPY_ALLOWED_TARGETS)
    assert isa.XLA_CAP in os.environ["XLA_FLAGS"]
    for key, value in isa.PINNED_ENV.items():
        assert os.environ[key] == value


@needs_supported_cpu
def test_pin_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert isa.pin()
    assert os.environ["MKL_CBWR"] == "AVX2"
    assert os.environ["XLA_FLAGS"] == f"--xla_dump_to=/tmp/x {isa.XLA_CAP}"
    assert isa.pin() and os.environ["XLA_FLAGS"].count("xla_cpu_max_isa") == 1  # idempotent
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=SSE4_2")
    isa.pin()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_max_isa=SSE4_2"


def test_native_switch_turns_the_pin_off(monkeypatch):
    monkeypatch.setenv(isa.NATIVE_ENV, "1")
    assert not isa.pinned() and not isa.pin()
    assert not isa.status()["pinned"]


@needs_supported_cpu
def test_numpy_imported_first_is_reported():
    code = ("import numpy, warnings; warnings.simplefilter('error'); from ganrepro import isa; "
            "print(isa.status()['pinned']); isa.warn_if_unpinned()")
    done = subprocess.run([sys.executable, "-c", code], env=_environment({}), capture_output=True, text=True,
                          timeout=120)
    if "avx512f" not in isa.cpu_flags():
        assert done.returncode == 0 and done.stdout.strip() == "True"  # nothing above X86_V3 to switch off
    else:
        assert done.stdout.strip() == "False"
        assert done.returncode != 0 and "NumPy was imported before ganrepro" in done.stderr


def test_no_committed_report_is_known_to_differ_on_any_cpu():
    assert isa.KNOWN_REPORT_DIFFERENCES == {}


def test_cpu_vendor_and_family_and_the_known_differences(monkeypatch):
    fields = {"vendor_id": "AuthenticAMD", "cpu family": "26"}
    monkeypatch.setattr(isa, "_cpuinfo_field", lambda name: fields.get(name, ""))
    monkeypatch.setattr(isa, "KNOWN_REPORT_DIFFERENCES", {"image-smoke": {("AuthenticAMD", 26): "an AMD Zen 5"}})
    assert isa.cpu_vendor_family() == ("AuthenticAMD", 26)
    assert "Zen 5" in isa.known_report_difference("image-smoke")
    assert isa.known_report_difference("smoke") is None  # the 1D track has no exception
    fields.update({"vendor_id": "GenuineIntel", "cpu family": "6"})
    assert isa.cpu_vendor_family() == ("GenuineIntel", 6) and isa.known_report_difference("image-smoke") is None
    fields.clear()
    assert isa.cpu_vendor_family() == ("", -1) and isa.known_report_difference("image-smoke") is None
    assert "known not to" not in isa.describe()
    fields.update({"vendor_id": "AuthenticAMD", "cpu family": "26"})
    assert "known not to regenerate reports/image-smoke byte for byte on this CPU" in isa.describe()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_pytorch_twin_s_square_root_is_correctly_rounded_on_the_cpu(twins, dtype):
    """``torch_twin._sqrt`` equals NumPy's square root (IEEE 754's, correctly rounded) bit for bit, where
    MKL's ``torch.sqrt`` may not (it does not on an AMD Zen 5), and its gradient is autograd's for sqrt."""
    import torch

    torch_twin = twins[0]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(1e-12, 1e-3, 20_000), rng.uniform(0.5, 2e6, 20_000), [0.0, np.inf, np.nan]])
    x = x.astype(dtype)
    assert np.array_equal(torch_twin._sqrt(torch.from_numpy(x)).numpy(), np.sqrt(x), equal_nan=True)
    t = torch.from_numpy(x[:1000].copy()).requires_grad_(True)
    (torch_twin._sqrt(t) * torch.arange(1000, dtype=t.dtype)).sum().backward()
    expected = torch.arange(1000, dtype=t.dtype) / (2 * torch.from_numpy(np.sqrt(x[:1000])))
    assert torch.equal(t.grad, expected)
    with torch.no_grad():
        assert not torch_twin._sqrt(t).requires_grad


@pytest.mark.slow
@needs_supported_cpu
def test_same_bytes_on_this_cpu_and_on_an_avx2_only_cpu(twins):
    here = _run_workload({})
    avx2 = _run_workload(AVX2_ONLY_ENV)
    assert here["isa"]["pinned"], here["isa"]["reason"]
    assert avx2["isa"]["pinned"], avx2["isa"]["reason"]
    assert here["digest"] == avx2["digest"]
    if "avx512f" in isa.cpu_flags():
        native = _run_workload({isa.NATIVE_ENV: "1"})
        assert not native["isa"]["pinned"]
        assert native["digest"] != here["digest"], "the workload does not see the CPU's ISA: the test has no teeth"


@pytest.mark.slow
@needs_supported_cpu
@pytest.mark.parametrize("grid", ["smoke", "image-smoke"])
def test_smoke_report_on_an_avx2_only_cpu_equals_the_committed_one(twins, tmp_path, grid):
    env = _environment({**AVX2_ONLY_ENV, "GANREPRO_CACHE": str(tmp_path / "cache")})
    runs, out = tmp_path / "runs", tmp_path / grid
    for argv in (["sweep", "--grid", grid, "--runs", str(runs), "--quiet"],
                 ["report", "--grid", grid, "--runs", str(runs), "--out", str(out), "--quiet"]):
        done = subprocess.run([sys.executable, "-m", "ganrepro", *argv], env=env, capture_output=True, text=True,
                              timeout=900, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    committed = REPO / "reports" / grid
    differ = _differences(committed, out)
    known = isa.known_report_difference(grid)
    if known is not None:  # an expected failure, which must fail: see isa.KNOWN_REPORT_DIFFERENCES
        assert differ, f"reports/{grid} came back byte for byte: remove this CPU from isa.KNOWN_REPORT_DIFFERENCES"
        pytest.xfail(f"known not to reproduce on {known}; differs: {differ[:3]}")
    assert not differ, f"differs from the committed reports/{grid}: {differ[:10]}"


def _differences(a: Path, b: Path) -> list[str]:
    names = sorted({p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
                   | {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()})
    return [n for n in names if not ((a / n).is_file() and (b / n).is_file()
                                     and filecmp.cmp(a / n, b / n, shallow=False))]

