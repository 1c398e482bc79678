"""Image track, agreement ladder rung (b) and the twins' contract: TensorFlow vs PyTorch on the same
weights and inputs (both models, both G losses, z-dim 2 and 7, both dtypes); the networks' gradients,
and so both norms of the diagnostics, against central finite differences of the float64 reference;
one training step against the ladder's pieces; determinism, a seed alone vs in a stack, and short
chunked runs (padding rows, chunking, frozen G)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import ganrepro.impls
from ganrepro.image.config import ImageConfig
from ganrepro.image.streams import ImageChunk, latent_grid, training_chunks
from ganrepro.image.weights import initial_weights
from ganrepro.impls import IMAGE_TWINS, get_image_backend
from ganrepro.impls import numpy_image_ref as ref
from ganrepro.impls.image_interface import CURVES, FORWARD_KEYS, ImageTwin

from helpers import player_scale

BOUNDS = {"float64": 1e-12, "float32": 2e-5}
"""TF vs PyTorch, relative to each quantity's scale (its largest magnitude over the stack; for gradients,
the player's largest entry). float64: reached 8e-15. float32: the unit roundoff 6e-8 times ~300: about
ten layers forward and back, and at initialisation D's gradient is the difference of its real-batch and
fake-batch terms (opposite signs, nearly equal), which cancels about two digits; reached 4.7e-6."""
FD_STEP = 1e-6
N_IMAGES = 40


def synthetic(config: ImageConfig, seed: int = 0):
    """(images (N, H, W) in [0, 1], x (S, B, H, W), z, z_g (S, B, Z)) in the config's dtype."""
    rng = np.random.default_rng([seed, config.z_dim])
    s, b, side, dt = len(config.seeds), config.batch_size, config.image_size, config.dtype
    images = rng.random((N_IMAGES, side, side)).astype(dt)
    x = images[rng.integers(0, N_IMAGES, (s, b))]
    return images, x, rng.standard_normal((s, b, config.z_dim)).astype(dt), rng.standard_normal(
        (s, b, config.z_dim)).astype(dt)


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---- the contract -----------------------------------------------------------------------------
def protocol_members() -> list[tuple[str, tuple[str, ...]]]:
    """ImageTwin's functions in definition order with their parameter names (``self`` left out)."""
    return [(name, tuple(inspect.signature(fn).parameters)[1:]) for name, fn in vars(ImageTwin).items()
            if not name.startswith("_") and inspect.isfunction(fn)]


def source_members(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """A module's public top-level functions in source order with their parameter names (no import)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.name, tuple(a.arg for a in node.args.args)) for node in tree.body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


@pytest.mark.parametrize("framework_name", list(IMAGE_TWINS))
def test_each_twin_defines_exactly_the_protocol_in_order(framework_name):
    path = Path(ganrepro.impls.__file__).parent / f"{IMAGE_TWINS[framework_name].rsplit('.', 1)[-1]}.py"
    assert source_members(path) == protocol_members()


# ---- rung (b): TensorFlow vs PyTorch ---------------------------------------------------------------
CASES = [pytest.param(model, g_loss, z_dim, marks=[pytest.mark.slow] if model == "dcgan" else [],
                      id=f"{model}-{g_loss}-z{z_dim}")
         for model in ("linear", "dcgan") for g_loss in ("non_saturating", "saturating") for z_dim in (2, 7)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("model", "g_loss", "z_dim"), CASES)
def test_forward_and_gradients_agree_across_frameworks(model, g_loss, z_dim, dtype, agreement):
    twins = [get_image_backend(name) for name in ("torch", "tf")]
    config = ImageConfig(model=model, g_loss=g_loss, z_dim=z_dim, dtype=dtype, seeds=(0, 1, 2), batch_size=16)
    _, x, z, z_g = synthetic(config)
    a, b = (twin.forward_and_gradients(config, initial_weights(config), x, z, z_g) for twin in twins)
    assert set(a) == set(b) and set(FORWARD_KEYS) <= set(a)
    assert all(a[k].dtype == np.dtype(dtype) and a[k].shape == b[k].shape for k in a)
    forward = max(rel(a[k], b[k]) for k in b if k in FORWARD_KEYS or k.startswith("stats/"))
    grads = max(max(np.max(np.abs(a[k] - b[k])) for k in b if k.startswith(prefix)) / player_scale(b, prefix)
                for prefix in ("grad_d/", "grad_g/", "grad_g_out"))
    agreement(f"forward, losses, running stats, TF vs PyTorch ({dtype})", forward, BOUNDS[dtype])
    agreement(f"gradients of D, G and G(z'), TF vs PyTorch ({dtype})", grads, BOUNDS[dtype])


# ---- the networks' gradients against finite differences of the reference --------------------------
def fd_bound(value: float, scale: float) -> float:
    """Central differences' resolution relative to the gradient's scale: 10 eps |f| / h plus 1e-8 (truncation)."""
    return 10 * np.finfo(np.float64).eps * max(abs(value), 1.0) / FD_STEP / scale + 1e-8


def directional_errors(fn, params: dict, grads: dict, seed: int) -> tuple[float, float]:
    """(worst |FD - <g, d>| over unit directions d: two random ones per tensor and the gradient's own,
    the gradient's norm ||g|| over all of ``params``)."""
    rng = np.random.default_rng(seed)
    norm = float(np.sqrt(sum(np.sum(g * g) for g in grads.values())))
    directions = [{k: rng.standard_normal(v.shape)} for k, v in params.items() for _ in range(2)]
    directions.append(dict(grads))
    worst = 0.0
    for d in directions:
        length = np.sqrt(sum(np.sum(v * v) for v in d.values()))
        d = {k: v / length for k, v in d.items()}
        fd = ref.directional_derivative(fn, params, d, FD_STEP)
        worst = max(worst, abs(fd - sum(np.sum(grads[k] * v) for k, v in d.items())))
    return worst, norm


MODELS = ["linear", pytest.param("dcgan", marks=pytest.mark.slow)]
"""The DCGAN cases compile for seconds in TensorFlow (XLA), so they are marked slow."""


@pytest.mark.parametrize("g_loss", ["non_saturating", "saturating"])
@pytest.mark.parametrize("model", MODELS)
def test_network_gradients_and_norms_match_finite_differences(framework, model, g_loss, agreement):
    """forward_and_gradients at float64 against the reference's forward pass (1e-12), and its gradients
    dL_D/dtheta_D, dL_G/dtheta_G (whose norm is norms/G) and dL_G/dG(z') (norms/D) against central
    differences of the reference along random directions and the gradient's own."""
    twin = get_image_backend(framework)
    config = ImageConfig(model=model, g_loss=g_loss, dtype="float64", seeds=(0,), batch_size=8)
    w = initial_weights(config)
    w["G_stats"] = {k: v + 0.1 for k, v in w["G_stats"].items()}
    _, x, z, z_g = synthetic(config)
    got = twin.forward_and_gradients(config, w, x, z, z_g)
    expected = ref.forward(config, w, x, z, z_g)
    agreement(f"{framework} forward, losses, running stats vs NumPy", max(rel(got[k], v) for k, v in expected.items()),
              1e-12)

    def loss_d(d):
        return float(ref.d_losses(ref.discriminator(config, d, x), ref.discriminator(
            config, d, ref.generator(config, w["G"], z)[0]))[0].sum())

    def loss_g(g):
        return float(ref.g_loss(config, ref.discriminator(config, w["D"], ref.generator(config, g, z_g)[0])).sum())

    def loss_g_of_images(images):
        return float(ref.g_loss(config, ref.discriminator(config, w["D"], images["x"])).sum())

    checks = {
        "dL_D/dtheta_D": (loss_d, dict(w["D"]), {k: got[f"grad_d/{k}"] for k in w["D"]}),
        "dL_G/dtheta_G (norms/G)": (loss_g, dict(w["G"]), {k: got[f"grad_g/{k}"] for k in w["G"]}),
        "dL_G/dG(z') (norms/D)": (loss_g_of_images, {"x": ref.generator(config, w["G"], z_g)[0]},
                                  {"x": got["grad_g_out"]}),
    }
    for k, (name, (fn, params, grads)) in enumerate(checks.items()):
        worst, norm = directional_errors(fn, params, grads, seed=k)
        agreement(f"{framework} {name} vs finite differences (relative to its norm)", worst / norm,
                  fd_bound(fn(params), norm))


# ---- one training step against the ladder's pieces ---------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_one_training_step_is_the_ladders_pieces(framework, model, agreement):
    """Step 0 of train_chunk (float64): its curves are forward_and_gradients' losses and norms (D's at the
    initial weights, G's through the updated D), D's and G's updates are the reference Adam on those
    gradients, and G's running statistics are updated by both of its passes."""
    twin = get_image_backend(framework)
    config = ImageConfig(model=model, dtype="float64", seeds=(0, 1), batch_size=8, num_steps=1)
    images, *_ = synthetic(config)
    chunk = next(training_chunks(config, N_IMAGES))
    w0 = initial_weights(config)
    state, curves = twin.train_chunk(config, twin.init_state(config, w0, images), chunk)
    w1 = twin.state_weights(config, state)
    x, z, z_g = images[chunk.idx[0]], chunk.z_d[0], chunk.z_g[0]
    before = twin.forward_and_gradients(config, w0, x, z, z_g)
    after_d = twin.forward_and_gradients(config, dict(w0, D=w1["D"]), x, z, z_g)

    def norm(out, prefix):
        return np.sqrt(sum(np.sum(v.reshape(v.shape[0], -1) ** 2, axis=1) for k, v in out.items()
                           if k.startswith(prefix)))

    expected = {"loss/D": before["loss_d"], "loss/real": before["loss_real"], "loss/fake": before["loss_fake"],
                "loss/G": after_d["loss_g"], "norms/G": norm(after_d, "grad_g/"),
                "norms/D": norm(after_d, "grad_g_out")}
    worst = max(rel(curves[0, :, CURVES.index(name)], value) for name, value in expected.items())
    zero = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in w0["D"].items()}
    d1, _ = ref.adam_update(w0["D"], {k: before[f"grad_d/{k}"] for k in w0["D"]}, zero, chunk.lr_d[0])
    zero = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in w0["G"].items()}
    g1, _ = ref.adam_update(w0["G"], {k: after_d[f"grad_g/{k}"] for k in w0["G"]}, zero, chunk.lr_g[0])
    worst = max(worst, *(rel(w1["D"][k] - w0["D"][k], d1[k] - w0["D"][k]) for k in d1),
                *(rel(w1["G"][k] - w0["G"][k], g1[k] - w0["G"][k]) for k in g1),
                *(rel(w1["G_stats"][k], before[f"stats/{k}"]) for k in w0["G_stats"]))
    agreement(f"{framework} {model} step 0: curves, Adam updates, running stats vs the ladder", worst, 1e-12)


# ---- determinism, stacks, chunked runs ------------------------------------------------------------
def run(twin, config: ImageConfig, images, chunks=None):
    """Train through the config's chunks: (weights, curves (T, S, 6), G on 600 latent points)."""
    state = twin.init_state(config, initial_weights(config), images)
    curves = []
    for chunk in chunks or training_chunks(config, len(images)):
        state, c = twin.train_chunk(config, state, chunk)
        assert np.all(c[chunk.n_valid:] == 0) and np.all(np.isfinite(c[:chunk.n_valid]))
        curves.append(c[:chunk.n_valid])
    w = twin.state_weights(config, state)
    z = np.stack([np.resize(latent_grid(config.z_dim), (600, config.z_dim)) * (1 + s) for s in config.seeds])
    return w, np.concatenate(curves), twin.generate(config, w["G"], w["G_stats"], z.astype(config.dtype))


def arrays(result, index=None) -> dict:
    w, curves, images = result
    pick = (lambda a: a) if index is None else (lambda a: a[index])
    out = {f"{net}/{k}": pick(v) for net in w for k, v in w[net].items()}
    out.update(curves=curves if index is None else curves[:, index], generated=pick(images))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_repeated_calls_are_bitwise_identical(framework, model):
    twin = get_image_backend(framework)
    config = ImageConfig(model=model, seeds=(0, 1, 2), batch_size=16, num_steps=12, checkpoint_interval=5)
    images, x, z, z_g = synthetic(config)
    first, second = (twin.forward_and_gradients(config, initial_weights(config), x, z, z_g) for _ in range(2))
    assert all(first[k].tobytes() == second[k].tobytes() for k in first)
    first, second = arrays(run(twin, config, images)), arrays(run(twin, config, images))
    assert all(first[k].tobytes() == second[k].tobytes() for k in first)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_a_seed_alone_equals_the_same_seed_in_a_stack_of_three(framework, model, agreement):
    """Bitwise, for the trained weights, running statistics, curves and generated images (G's 600 points
    are two groups of 500); a lone seed runs as a stack of two (``image_interface.paired``)."""
    twin = get_image_backend(framework)
    config = ImageConfig(model=model, seeds=(4, 5, 6), batch_size=16, num_steps=12, checkpoint_interval=5)
    images, *_ = synthetic(config)
    stacked = arrays(run(twin, config, images), None)
    worst = 0.0
    for k, seed in enumerate(config.seeds):
        alone = arrays(run(twin, config.with_seeds((seed,)), images), 0)
        for name, value in alone.items():
            inside = stacked[name][:, k] if name == "curves" else stacked[name][k]
            worst = max(worst, float(np.max(np.abs(value - inside))))
    agreement(f"{framework} {model}: seed alone vs in a stack of 3, max abs difference", worst, 0.0)


def with_garbage_padding(chunk: ImageChunk, rng) -> ImageChunk:
    """The chunk with its padding rows (n_valid on) filled with other indices, large noise and step sizes 1."""
    valid = np.arange(len(chunk.lr_d)) < chunk.n_valid

    def fill(a, junk):
        return np.where(valid.reshape(-1, *([1] * (a.ndim - 1))), a, np.asarray(junk).astype(a.dtype))

    return ImageChunk(chunk.start, chunk.n_valid, fill(chunk.idx, rng.integers(0, N_IMAGES, chunk.idx.shape)),
                      fill(chunk.z_d, 100 * rng.standard_normal(chunk.z_d.shape)),
                      fill(chunk.z_g, 100 * rng.standard_normal(chunk.z_g.shape)), fill(chunk.lr_d, 1.0),
                      fill(chunk.lr_g, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_chunked_runs_padding_rows_and_a_frozen_generator(framework, model):
    """25 steps as chunks of 10, 10 and 5 (+ 5 padding rows) give the bytes of chunks of 5; garbage in the
    padding rows changes nothing; with freeze_g, G's weights and Adam moments stay as they were (its
    running statistics still move) while its gradient is still measured."""
    twin = get_image_backend(framework)
    config = ImageConfig(model=model, seeds=(0, 1), batch_size=16, num_steps=25, checkpoint_interval=10)
    images, *_ = synthetic(config)
    chunks = list(training_chunks(config, N_IMAGES))
    assert [c.n_valid for c in chunks] == [10, 10, 5]
    by_ten = arrays(run(twin, config, images, chunks))
    by_five = arrays(run(twin, config.replace(checkpoint_interval=5), images))
    assert all(by_ten[k].tobytes() == by_five[k].tobytes() for k in by_ten)
    padded_chunks = [*chunks[:-1], with_garbage_padding(chunks[-1], np.random.default_rng(1))]
    padded = arrays(run(twin, config, images, padded_chunks))
    assert all(by_ten[k].tobytes() == padded[k].tobytes() for k in by_ten)

    frozen = config.replace(freeze_g=True, num_steps=10)
    w0 = initial_weights(frozen)
    state = twin.init_state(frozen, w0, images)
    state, curves = twin.train_chunk(frozen, state, next(training_chunks(frozen, N_IMAGES)))
    w = twin.state_weights(frozen, state)
    assert all(w["G"][k].tobytes() == w0["G"][k].tobytes() for k in w0["G"])
    assert all(np.all(np.asarray(m) == 0) for m in state["G_slots"])
    assert all(not np.array_equal(w["D"][k], w0["D"][k]) for k in ("d0.w", "d1.w"))
    assert all(not np.array_equal(w["G_stats"][k], w0["G_stats"][k]) for k in w0["G_stats"])
    assert np.all(np.isfinite(curves)) and np.all(curves[:, :, CURVES.index("norms/G")] > 0)
