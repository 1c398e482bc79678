"""The TensorFlow twin: docs/networks.md, losses.md and updates.md for a stack of S seeds, the loop compiled by XLA.

Diff this file against ``torch_twin.py``: the two define the same functions in the same order and
differ only in framework idioms. Every tensor carries a leading seed axis S; batches are (S, B).
Where PyTorch runs a Python loop, this twin runs a ``tf.while_loop`` inside one
``tf.function(jit_compile=True)`` per chunk shape.
"""
from __future__ import annotations

import functools
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN reorders float sums; keep results bitwise stable

from ganrepro.impls import import_order  # noqa: F401  (Triton's LLVM before TensorFlow's: impls/import_order.py)

# isort: split
import numpy as np
import tensorflow as tf

from ganrepro.config import LOG_CLIP, ExperimentConfig
from ganrepro.devices import DeviceUnavailable, check_device, cpu_info, nvidia_driver
from ganrepro.schedules import ADAM_BETA1, ADAM_BETA2, ADAM_EPS
from ganrepro.streams import Chunk, Pretraining, noise_routing, pad_to_batches, with_noise
from ganrepro.weights import discriminator_shapes, generator_shapes

from .interface import CURVES, in_curve_order
from .tf_minibatch import kernel_sums

NAME = "tf"
STACK_LIMIT = 256
"""The largest stack whose seeds round exactly as each alone: from 512 seeds on, XLA's CPU code
generation rounds some seeds' steps differently (measured: a seed alone vs in a stack of 512
differed from step 3 of protocol 2017, with and without minibatch discrimination).
``training.train`` trains larger stacks as groups of at most this many (tests/test_determinism.py)."""


def configure() -> None:
    """Deterministic kernels, no TF32, one intra-op thread (runs are parallel across processes)."""
    tf.config.experimental.enable_op_determinism()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime was already initialised by the caller; keep its setting
        pass


configure()


DEVICE = "/CPU:0"
"""Where the work runs (a ``tf.device`` name): set by :func:`use_device`."""


def versions() -> dict:
    """{library: version} of the framework and NumPy, for the records."""
    return {"tensorflow": tf.__version__, "numpy": np.__version__}


def use_device(device: str) -> dict:
    """Run on ``device`` ("cpu", or "cuda": the first GPU TensorFlow lists); its device_info.

    ``DeviceUnavailable`` when the installed TensorFlow lists no GPU (``tensorflow-cpu`` never
    does). The NumPy-facing entry points run under ``tf.device(DEVICE)`` (``_on_device``), so
    that "cpu" stays on the CPU even where a GPU is visible. Determinism is ``configure``'s.
    """
    global DEVICE
    check_device(device)
    if device == "cpu":
        DEVICE = "/CPU:0"
        return cpu_info()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        build = "built with CUDA" if tf.test.is_built_with_cuda() else "a CPU-only build, e.g. tensorflow-cpu"
        raise DeviceUnavailable(f"--device cuda: TensorFlow {tf.__version__} ({build}) sees no GPU here; "
                                "allowed: cpu (PyTorch trains on CUDA where it sees a GPU)")
    DEVICE = "/GPU:0"
    details = tf.config.experimental.get_device_details(gpus[0])
    build = tf.sysconfig.get_build_info()
    capability = details.get("compute_capability")
    return {"type": "cuda", "name": details.get("device_name", gpus[0].name),
            "capability": ".".join(str(v) for v in capability) if capability else None,
            "driver": nvidia_driver(), "cuda": build.get("cuda_version"), "cudnn": build.get("cudnn_version"),
            "tensorflow": tf.__version__}


def _on_device(fn):
    """Run ``fn`` under ``tf.device(DEVICE)``: its constants and ops are placed on the chosen device."""
    @functools.wraps(fn)
    def placed(*args, **kwargs):
        with tf.device(DEVICE):
            return fn(*args, **kwargs)
    return placed


def to_tensors(arrays: dict) -> dict:
    """{name: NumPy array} -> {name: tensor}, same dtype and values."""
    return {k: tf.constant(v) for k, v in arrays.items()}


def to_numpy(tensors: dict) -> dict:
    """{name: tensor} -> {name: NumPy array} (copies)."""
    return {k: np.array(v) for k, v in tensors.items()}


# ---- layers ---------------------------------------------------------------------------------
def linear(x, w, b):
    """y = x W + b, batched over the leading axes: x (S, B, in), W (S, in, out), b (S, out).

    Written as a broadcast product summed over ``in``: XLA's batched dot picks its kernel (and so
    its rounding) by the stack size S, and a seed's result must not depend on which seeds share
    its stack. At these widths (in <= 13) it is no slower. (PyTorch's matmul has no such
    dependence, so the PyTorch twin keeps matmul.)
    """
    return tf.reduce_sum(tf.expand_dims(x, -1) * tf.expand_dims(w, -3), -2) + tf.expand_dims(b, -2)


def softplus(x):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), the exact formula (no threshold cut-off)."""
    return tf.maximum(x, 0) + tf.math.log1p(tf.exp(-tf.abs(x)))


def activation(config: ExperimentConfig):
    """D's hidden activation: tanh (protocol 2016) or relu (protocol 2017)."""
    return tf.tanh if config.activation == "tanh" else tf.nn.relu


def generator(p: dict, z):
    """G(z) = linear(softplus(linear(z, h)), 1): z (S, B) -> (S, B)."""
    h = softplus(linear(tf.expand_dims(z, -1), p["g0.w"], p["g0.b"]))
    return tf.squeeze(linear(h, p["g1.w"], p["g1.b"]), -1)


def minibatch_features(f, w, b, config: ExperimentConfig, formulation: str = "production"):
    """o(i)_k = sum_j exp(-(d_k(i, j) + s [i == j])), d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|.

    M = linear(f, K*C) reshaped to (S, B, K, C); s = 1 ("exp-1"), 0 ("exp0") or inf ("none").
    Returns (S, B, K). ``formulation``: "production" (what training uses; its kernels depend on
    the batch size, see ``tf_minibatch.py``) or "reference" (the published (B, K, C, B) broadcast).
    """
    m = linear(f, w, b)
    m = tf.reshape(m, tf.concat([tf.shape(m)[:-1], [config.mbd_kernels, config.mbd_dims]], 0))
    return kernel_sums(m, config.mbd_self_term, formulation)


def discriminator(p: dict, x, config: ExperimentConfig):
    """D(x) -> (probability (S, B), last hidden layer f (S, B, F)); docs/networks.md#discriminator."""
    act = activation(config)
    h = act(linear(tf.expand_dims(x, -1), p["d0.w"], p["d0.b"]))
    h = act(linear(h, p["d1.w"], p["d1.b"]))
    if config.minibatch:
        f = tf.concat([h, minibatch_features(h, p["mbd.w"], p["mbd.b"], config)], axis=-1)
    else:
        f = act(linear(h, p["d2.w"], p["d2.b"]))
    return tf.sigmoid(tf.squeeze(linear(f, p["out.w"], p["out.b"]), -1)), f


# ---- losses ---------------------------------------------------------------------------------
def log(t, config: ExperimentConfig):
    """log(t), or log(max(t, 1e-5)) in protocol 2017."""
    return tf.math.log(tf.maximum(t, LOG_CLIP)) if config.clip_log else tf.math.log(t)


def d_loss(d_real, d_fake, config):
    """Per seed: mean_B(real - log(1 - D(G(z)))), real = -log D(x), or with one-sided label
    smoothing alpha < 1: -alpha log D(x) - (1 - alpha) log(1 - D(x))."""
    alpha = config.label_smoothing
    if alpha == 1.0:
        real = -log(d_real, config)
    else:
        real = -(alpha * log(d_real, config) + (1 - alpha) * log(1 - d_real, config))
    return tf.reduce_mean(real - log(1 - d_fake, config), -1)


def feature_matching(f_real, f_fake, config):
    """Per seed, on D's last hidden layer f (S, B, F): paired_l2 = sqrt(sum_i,k (f(x_i) - f(G(z_i)))^2),
    paired_sq = the same without sqrt, mean_sq = ||mean_i f(x_i) - mean_i f(G(z_i))||^2."""
    if config.feature_matching == "mean_sq":
        diff = tf.reduce_mean(f_real, -2) - tf.reduce_mean(f_fake, -2)
        return tf.reduce_sum(diff * diff, -1)
    diff = f_real - f_fake
    paired_sq = tf.reduce_sum(diff * diff, [-2, -1])
    return tf.sqrt(paired_sq) if config.feature_matching == "paired_l2" else paired_sq


def g_loss(d_fake, f_real, f_fake, config):
    """Per seed: the adversarial term (non-saturating mean_B(-log D(G(z))), saturating
    mean_B(log(1 - D(G(z)))), or none) plus fm_weight * feature matching, if on."""
    loss = None
    if config.g_loss == "non_saturating":
        loss = tf.reduce_mean(-log(d_fake, config), -1)
    elif config.g_loss == "saturating":
        loss = tf.reduce_mean(log(1 - d_fake, config), -1)
    if config.feature_matching != "none":
        fm = config.fm_weight * feature_matching(f_real, f_fake, config)
        loss = fm if loss is None else loss + fm
    return loss


def historical_penalty(theta, past_sum, t, config):
    """Per seed: lambda * ||theta - past_sum / t||^2, the mean over the player's t past values
    theta_0 .. theta_{t-1}; zero at t = 0 (no past yet). t: a tensor (the step loop is compiled)."""
    t = tf.cast(t, theta.dtype)
    diff = theta - past_sum / tf.maximum(t, 1)
    penalty = config.historical_averaging * tf.reduce_sum(diff * diff, -1)
    return tf.where(t > 0, penalty, tf.zeros_like(penalty))


def pretrain_loss(d_out, labels):
    """Per seed: mean_B((D_pre(d) - labels)^2)."""
    return tf.reduce_mean((d_out - labels) ** 2, -1)


# ---- parameters: one flat (S, P) tensor per player ------------------------------------------
def flatten(params: dict):
    """A player's (S, ...) parameters, in draw order, concatenated into one (S, P) tensor."""
    return tf.concat([tf.reshape(v, [tf.shape(v)[0], -1]) for v in params.values()], axis=1)


def unflatten(flat, shapes) -> dict:
    """Views of flat (S, P) as named parameters; ``shapes`` as from ``ganrepro.weights``."""
    pieces = tf.split(flat, [math.prod(shape) for _, shape, _ in shapes], axis=1)
    return {name: tf.reshape(piece, [-1, *shape]) for (name, shape, _), piece in zip(shapes, pieces, strict=True)}


# ---- optimizers (on a player's flat parameter tensor) ---------------------------------------
def gd_update(theta, grad, lr):
    """theta <- theta - lr_t * g."""
    return theta - lr * grad


def adam_update(theta, grad, slots, lr):
    """TF1 Adam with alpha_t = lr (precomputed): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    theta <- theta - alpha_t * m / (sqrt(v) + eps)."""
    m, v = slots
    m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grad
    v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * (grad * grad)
    return theta - lr * m / (tf.sqrt(v) + ADAM_EPS), (m, v)


def apply_update(config, theta, grad, slots, lr):
    """(theta, slots) after one update of the protocol's optimizer (Adam or gradient descent)."""
    if config.optimizer == "adam_tf1":
        return adam_update(theta, grad, slots, lr)
    return gd_update(theta, grad, lr), slots


def zero_slots(config, theta):
    """Adam's (m, v), or () for gradient descent."""
    return (tf.zeros_like(theta), tf.zeros_like(theta)) if config.optimizer == "adam_tf1" else ()


def l2_norm(t):
    """Per seed L2 norm over all entries of an (S, ...) tensor."""
    flat = tf.reshape(t, [tf.shape(t)[0], -1])
    return tf.sqrt(tf.reduce_sum(flat * flat, -1))


# ---- training -------------------------------------------------------------------------------
def d_step(config, g_flat, d_flat, d_slots, d_past, x, z, noise_real, noise_fake, lr, t):
    """D's update: L_D at (x, G(z)) plus the historical penalty, instance noise as ``noise_routing``
    puts it. Returns new D weights and slots, and the curves {loss/D, loss/real, loss/fake}."""
    route = noise_routing(config)
    fake = generator(unflatten(g_flat, generator_shapes(config)), with_noise(z, noise_fake, route.z_d))
    fake = tf.stop_gradient(with_noise(fake, noise_fake, route.fake_d))
    with tf.GradientTape() as tape:
        tape.watch(d_flat)
        d_params = unflatten(d_flat, discriminator_shapes(config))
        d_real, _ = discriminator(d_params, with_noise(x, noise_real, route.x_d), config)
        d_fake, _ = discriminator(d_params, fake, config)
        loss = d_loss(d_real, d_fake, config)
        if config.historical_averaging:
            loss = loss + historical_penalty(d_flat, d_past, t, config)
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, d_flat)
    new_flat, new_slots = apply_update(config, d_flat, grad, d_slots, lr)
    loss_real = tf.reduce_mean(-log(d_real, config), -1)
    loss_fake = tf.reduce_mean(-log(1 - d_fake, config), -1)
    return new_flat, new_slots, {"loss/D": loss, "loss/real": loss_real, "loss/fake": loss_fake}


def g_step(config, g_flat, g_slots, g_past, d_flat, x, z, noise_real, noise_fake, lr, t):
    """G's update: L_G at G(z) (x: the real batch, for feature matching) plus the historical
    penalty, instance noise as ``noise_routing`` puts it. Returns new G weights and slots, and the
    curves {loss/G, norms/G, norms/D}."""
    route = noise_routing(config)
    d_params = unflatten(d_flat, discriminator_shapes(config))
    f_real = None
    if config.feature_matching != "none":
        f_real = tf.stop_gradient(discriminator(d_params, with_noise(x, noise_real, route.x_g), config)[1])
    with tf.GradientTape() as tape:
        tape.watch(g_flat)
        fake = generator(unflatten(g_flat, generator_shapes(config)), z)
        d_fake, f_fake = discriminator(d_params, with_noise(fake, noise_fake, route.fake_g), config)
        loss = g_loss(d_fake, f_real, f_fake, config)
        if config.historical_averaging:
            loss = loss + historical_penalty(g_flat, g_past, t, config)
        total = tf.reduce_sum(loss)
    grad, grad_fake = tape.gradient(total, [g_flat, fake])
    new_flat, new_slots = apply_update(config, g_flat, grad, g_slots, lr)
    return new_flat, new_slots, {"loss/G": loss, "norms/G": l2_norm(grad), "norms/D": l2_norm(grad_fake)}


_COMPILED: dict = {}


def _compiled(kind: str, config: ExperimentConfig, build):
    """One XLA-compiled function per (kind, config without seeds); XLA caches per input shape."""
    key = (kind, config.with_seeds((0,)))
    if key not in _COMPILED:
        _COMPILED[key] = tf.function(build(config), jit_compile=True, autograph=False)
    return _COMPILED[key]


def _build_pretrain_loop(config):
    """``pretrain``'s P steps as one ``tf.while_loop``."""
    shapes = discriminator_shapes(config)

    def loop(flat, inputs, labels, lrs):
        def body(t, flat):
            with tf.GradientTape() as tape:
                tape.watch(flat)
                d_out, _ = discriminator(unflatten(flat, shapes), tf.gather(inputs, t), config)
                total = tf.reduce_sum(pretrain_loss(d_out, tf.gather(labels, t)))
            return t + 1, gd_update(flat, tape.gradient(total, flat), tf.gather(lrs, t))

        _, flat = tf.while_loop(lambda t, _: t < tf.shape(inputs)[0], body, (tf.constant(0), flat))
        return flat
    return loop


@_on_device
def pretrain(config: ExperimentConfig, d_weights: dict, data: Pretraining) -> dict:
    """Protocol 2016: P steps of gradient descent on mean((D_pre(d) - pdf(d))^2)."""
    loop = _compiled("pretrain", config, _build_pretrain_loop)
    flat = loop(flatten(to_tensors(d_weights)), tf.constant(data.inputs), tf.constant(data.labels),
                tf.constant(data.lr))
    return to_numpy(unflatten(flat, discriminator_shapes(config)))


@_on_device
def init_state(config: ExperimentConfig, g_weights: dict, d_weights: dict) -> dict:
    """The training state: flat weights, optimizer slots and sums of past weights of G and D."""
    g, d = flatten(to_tensors(g_weights)), flatten(to_tensors(d_weights))
    return {"G": g, "D": d, "G_slots": zero_slots(config, g), "D_slots": zero_slots(config, d),
            "G_past": tf.zeros_like(g), "D_past": tf.zeros_like(d)}


def _build_train_loop(config):
    """``train_chunk``'s steps as one ``tf.while_loop``: d_step, then g_step, one curve row per step."""
    def loop(state, x, z_d, z_g, n_real, n_fake_d, n_fake_g, lr_d, lr_g, start, n_valid):
        def body(i, state, curves):
            g, d, g_slots, d_slots = state["G"], state["D"], state["G_slots"], state["D_slots"]
            g_past, d_past = state["G_past"], state["D_past"]
            t = start + i
            x_i, n_real_i = tf.gather(x, i), tf.gather(n_real, i)
            d_new, d_slots, d_curves = d_step(
                config, g, d, d_slots, d_past, x_i, tf.gather(z_d, i), n_real_i, tf.gather(n_fake_d, i),
                tf.gather(lr_d, i), t)
            g_new, g_slots, g_curves = g_step(
                config, g, g_slots, g_past, d_new, x_i, tf.gather(z_g, i), n_real_i, tf.gather(n_fake_g, i),
                tf.gather(lr_g, i), t)
            if config.historical_averaging:
                d_past, g_past = d_past + d, g_past + g
            row = tf.stack(in_curve_order(d_curves, g_curves), axis=-1)
            curves = tf.tensor_scatter_nd_update(curves, [[i]], row[None])
            state = {"G": g_new, "D": d_new, "G_slots": g_slots, "D_slots": d_slots, "G_past": g_past, "D_past": d_past}
            return i + 1, state, curves

        curves = tf.zeros([tf.shape(x)[0], tf.shape(x)[1], len(CURVES)], dtype=x.dtype)
        _, state, curves = tf.while_loop(lambda i, *_: i < n_valid, body, (tf.constant(0), state, curves))
        return state, curves
    return loop


@_on_device
def train_chunk(config: ExperimentConfig, state: dict, chunk: Chunk):
    """Run the chunk's valid steps; curves (L, S, len(CURVES)) in the order of ``interface.CURVES``."""
    loop = _compiled("train", config, _build_train_loop)
    arrays = (chunk.x, chunk.z_d, chunk.z_g, chunk.noise_real, chunk.noise_fake_d, chunk.noise_fake_g,
              chunk.lr_d, chunk.lr_g)
    state, curves = loop(state, *(tf.constant(a) for a in arrays), tf.constant(chunk.start),
                         tf.constant(chunk.n_valid))
    return state, curves.numpy()


@_on_device
def state_weights(config: ExperimentConfig, state: dict) -> dict:
    """{"G": g_weights, "D": d_weights} of a state, as NumPy arrays."""
    return {"G": to_numpy(unflatten(state["G"], generator_shapes(config))),
            "D": to_numpy(unflatten(state["D"], discriminator_shapes(config)))}


# ---- evaluation and the agreement ladder ----------------------------------------------------
@_on_device
def generate(config: ExperimentConfig, g_weights: dict, z: np.ndarray) -> np.ndarray:
    """G(z) for z (S, N)."""
    return generator(to_tensors(g_weights), tf.constant(z)).numpy()


@_on_device
def discriminate(config: ExperimentConfig, d_weights: dict, x: np.ndarray) -> np.ndarray:
    """D on (S, N) points, in consecutive batches of B (an extra batch axis after S)."""
    n = x.shape[1]
    batches = tf.constant(pad_to_batches(x, config.batch_size))  # (S, nb, B)
    params = {k: tf.expand_dims(v, 1) for k, v in to_tensors(d_weights).items()}  # broadcast over nb
    prob, _ = discriminator(params, batches, config)
    return tf.reshape(prob, [x.shape[0], -1])[:, :n].numpy()


@_on_device
def sort_rows(x: np.ndarray) -> np.ndarray:
    """Each row of x (S, N) sorted ascending on DEVICE (exact for finite rows, the only ones scored)."""
    return tf.sort(tf.constant(x), axis=-1).numpy()


@_on_device
def forward_and_gradients(config, g_weights, d_weights, x, z) -> dict:
    """Forward values, losses and gradients at fixed weights and inputs (see ``interface``)."""
    g, d = to_tensors(g_weights), to_tensors(d_weights)
    x, z = tf.constant(x), tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([*g.values(), *d.values()])
        g_out = generator(g, z)
        d_real, f_real = discriminator(d, x, config)
        d_fake, f_fake = discriminator(d, g_out, config)
        loss_d, loss_g = d_loss(d_real, d_fake, config), g_loss(d_fake, tf.stop_gradient(f_real), f_fake, config)
        total_d, total_g = tf.reduce_sum(loss_d), tf.reduce_sum(loss_g)
    grads_d = tape.gradient(total_d, list(d.values()))
    *grads_g, grad_g_out = tape.gradient(total_g, [*g.values(), g_out])
    out = {
        "g_out": g_out, "d_real": d_real, "d_fake": d_fake, "f_real": f_real, "f_fake": f_fake,
        "loss_d": loss_d, "loss_g": loss_g,
        "loss_real": tf.reduce_mean(-log(d_real, config), -1),
        "loss_fake": tf.reduce_mean(-log(1 - d_fake, config), -1),
        "grad_g_out": grad_g_out,
    }
    out.update({f"grad_d/{k}": v for k, v in zip(d, grads_d, strict=True)})
    out.update({f"grad_g/{k}": v for k, v in zip(g, grads_g, strict=True)})
    return to_numpy(out)


@_on_device
def penalty_and_gradient(config, theta: np.ndarray, past_sum: np.ndarray, t: int):
    """The historical penalty per seed and its gradient w.r.t. theta (S, P), for the ladder."""
    theta = tf.constant(theta)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        penalty = historical_penalty(theta, tf.constant(past_sum), tf.constant(t), config)
        total = tf.reduce_sum(penalty)
    return penalty.numpy(), tape.gradient(total, theta).numpy()


@_on_device
def optimizer_update(config, params: dict, grads: dict, slots: dict, lr: float):
    """One update of the protocol's optimizer on NumPy arrays; slots: name -> (m, v) or {}."""
    shapes = [(k, v.shape[1:], 0.0) for k, v in params.items()]
    theta, grad = flatten(to_tensors(params)), flatten(to_tensors(grads))
    flat_slots = tuple(flatten(to_tensors({k: mv[i] for k, mv in slots.items()})) for i in (0, 1)) if slots else ()
    theta, flat_slots = apply_update(config, theta, grad, flat_slots, tf.constant(lr, dtype=theta.dtype))
    new_slots = {}
    if flat_slots:
        m, v = (to_numpy(unflatten(t, shapes)) for t in flat_slots)
        new_slots = {k: (m[k], v[k]) for k in params}
    return to_numpy(unflatten(theta, shapes)), new_slots
