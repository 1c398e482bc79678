"""``ganrepro bench``'s image-track rows: one training step of post 004's GANs (docs/images.md), per
framework, device, model, data size and stack size S, measured in a fresh worker process pinned to
one core (on CUDA: the GPU, driven by that core).

A step is one D update and one G update (``train_chunk`` of the image twins on a chunk of
:data:`STEPS_PER_CALL` steps, the compiled loop in TensorFlow; compilation is in the warm-up call),
every call from the same initial state, on the device the twin's ``use_device`` chose. On CUDA a
timed call ends with ``torch.cuda.synchronize()`` (PyTorch; TensorFlow's call returns its curves
to the host, which waits for the GPU). Rows: seconds per step and per seed-step (best of the
rounds). Written as ``image_training_<device>.csv/.md`` beside the minibatch tables.
"""
from __future__ import annotations

from pathlib import Path

STEPS_PER_CALL = 10

CASES = (("dcgan", "digits8", 1), ("dcgan", "digits8", 16), ("linear", "digits8", 16), ("dcgan", "mnist", 1),
         ("dcgan", "mnist", 4))
"""(model, data size, S): the default image grid's cells (8x8, 16 seeds stacked) and the 28x28 DCGAN."""
QUICK_CASES = (("dcgan", "digits8", 1), ("linear", "digits8", 2))

COLUMNS = ["framework", "model", "image_size", "stack", "batch", "step_ms", "seed_step_ms", "rounds", "warmup_s",
           "device", "device_name", "framework_version"]


def image_step_rows(framework: str, device: str, quick: bool) -> list[dict]:
    """Time ``train_chunk`` for each case (synthetic images of the data set's size: the cost does not
    depend on the pixel values); one row per case."""
    import numpy as np

    from ..image.config import ImageConfig
    from ..image.streams import training_chunks
    from ..image.weights import initial_weights
    from ..impls import get_image_backend
    from .cases import device_name, time_case

    backend = get_image_backend(framework)
    if framework == "tf" and device == "cuda":
        from .training_steps import _configure_tf_gpu

        _configure_tf_gpu()
    info = backend.use_device(device)
    name = device_name(device) if device == "cpu" else info.get("name")
    sync = _synchronizer(framework, device)
    rows = []
    for model, dataset, stack in (QUICK_CASES if quick else CASES):
        config = ImageConfig(model=model, dataset=dataset, seeds=tuple(range(stack)), num_steps=STEPS_PER_CALL,
                             checkpoint_interval=STEPS_PER_CALL)
        size = config.image_size
        images = np.random.default_rng(0).random((512, size, size)).astype(config.dtype)
        chunk = next(training_chunks(config, len(images)))
        state = backend.init_state(config, initial_weights(config), images)  # on the device, outside the timing

        def run(config=config, state=state, chunk=chunk):
            backend.train_chunk(config, state, chunk)  # a new state each call: its input is left alone
            sync()

        timing = time_case(run, min_time=0.05 if quick else 1.0, min_rounds=1 if quick else 3)
        step = timing["best_s"] / STEPS_PER_CALL
        rows.append({"framework": framework, "model": model, "image_size": size, "stack": stack,
                     "batch": config.batch_size, "step_ms": step * 1e3, "seed_step_ms": step / stack * 1e3,
                     "rounds": timing["rounds"], "warmup_s": timing["warmup_s"], "device": device,
                     "device_name": name,
                     "framework_version": backend.versions().get("torch" if framework == "torch" else "tensorflow")})
    return rows


def _synchronizer(framework: str, device: str):
    """A function that waits for the device's queued work: ``torch.cuda.synchronize`` for PyTorch on
    CUDA, else nothing to do (the CPU computes in the call; TensorFlow's curves come back to the host)."""
    if framework == "torch" and device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def markdown(rows: list[dict], device: str) -> str:
    """The rows as a Markdown table, with the device named."""
    names = ", ".join(sorted({r["device_name"] for r in rows}))
    lines = [f"# Image track: one training step, {device}: {names}", "",
             "One D update and one G update of post 004's GANs (docs/images.md), batch 64, float32, "
             f"{'one thread' if device == 'cpu' else 'on the GPU, driven by one CPU thread'}; "
             f"time = best of the rounds of {STEPS_PER_CALL} steps, per step and per seed-step (S seeds stacked).",
             "", "| framework | model | image | S | step (ms) | per seed-step (ms) |", "|---|---|---|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["framework"], r["model"], r["image_size"], r["stack"])):
        lines.append(f"| {r['framework']} | {r['model']} | {r['image_size']}x{r['image_size']} | {r['stack']} | "
                     f"{r['step_ms']:.4g} | {r['seed_step_ms']:.4g} |")
    return "\n".join(lines) + "\n"


def write_image_tables(rows: list[dict], out: Path) -> list[Path]:
    """image_training_<device>.csv and .md for every device in ``rows`` (written atomically)."""
    import pandas as pd

    from .. import outdirs
    from ..files import write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for device in sorted({r["device"] for r in rows}):
        part = [r for r in rows if r["device"] == device]
        paths = [out / f"image_training_{device}.{ext}" for ext in ("csv", "md")]
        for path in paths:
            outdirs.remove_stale_temporaries(out, path.name)
        write_text_atomic(paths[0], pd.DataFrame(part)[COLUMNS].to_csv(index=False))
        write_text_atomic(paths[1], markdown(part, device))
        written.extend(paths)
    return written
