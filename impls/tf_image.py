"""The TensorFlow image twin: docs/images.md (linear GAN and DCGAN) for a stack of S seeds, compiled by XLA.

Diff this file against ``torch_image.py``: the two define the same functions in the same order and
differ only in framework idioms. Activations are (S, B, H, W, C), kernels (S, k, k, C_in, C_out);
importing ``tf_twin`` runs its ``configure()`` (op determinism, no TF32, one thread). Where PyTorch
runs a Python loop, this twin runs a ``tf.while_loop`` inside one ``tf.function(jit_compile=True)``
per chunk shape; ``generate``, ``forward_and_gradients`` and ``vjp`` are compiled too, so the
ladder checks the code XLA runs in training.

Every float32 matrix product is the exact product (``tf_exact_product``, docs/images.md#products),
whose bits no library chooses (XLA's own float32 products take Eigen's cache-sized blocks, which differ
between CPU models). Convolutions are written in the spec's layout as patch matrices and a batched
matrix product over the seed axis: conv = the (u, v, c) patches of the padded input times the kernel as a
(16 C_in, C_out) matrix; the transposed conv = the input times the kernel as a (C_in, 16 C_out)
matrix, its 16 taps then added into the output at 2i + u - 1 (four shifted, zero-padded blocks).
XLA's grouped convolution (seeds folded into channels) is expanded to a dense one, S times the
work (10 to 35 times slower here); a Python loop of per-seed ``tf.nn.conv2d`` calls is 2 to 4 times
slower at 8x8 (about as fast at 28x28) and compiles slower.

Device: ``use_device`` picks it (``tf_twin.use_device``: the first GPU TensorFlow lists, or
``DeviceUnavailable`` where its build lists none, as ``tensorflow-cpu`` never does); the NumPy-facing
entry points run under ``tf.device`` of that choice (``_on_device``), so their constants, state and
compiled functions are placed there. Determinism is ``tf_twin.configure``'s: op determinism (which
XLA's GPU autotuner honours too, keeping to deterministic convolution and GEMM algorithms; the
loop's one scatter writes a curve row at a single index, nothing accumulated) and no TF32.
"""
from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as tf_twin sets them, before tensorflow is imported here
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from ganrepro.impls import import_order  # noqa: F401  (Triton's LLVM before TensorFlow's: impls/import_order.py)

# isort: split
import numpy as np
import tensorflow as tf

from ganrepro.image.config import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, BN_EPS, BN_MOMENTUM, LEAKY_SLOPE, ImageConfig
from ganrepro.image.streams import ImageChunk
from ganrepro.image.weights import discriminator_shapes, generator_shapes

from . import tf_twin  # its import runs configure(): the deterministic set-up; its DEVICE is ours
from .image_interface import CURVES, GENERATE_GROUP, paired, unpaired
from .interface import in_curve_order
from .tf_exact_product import product  # float32 products whose bits no library chooses
from .tf_twin import _on_device  # runs an entry point under tf.device of the chosen device

NAME = "tf"
STRIDE, PAD = 2, 1


def versions() -> dict:
    """{library: version} of the framework and NumPy, for the records."""
    return {"tensorflow": tf.__version__, "numpy": np.__version__}


def use_device(device: str) -> dict:
    """Run on ``device`` ("cpu", or "cuda": the first GPU TensorFlow lists); its device_info. ``DeviceUnavailable``
    (one line: what TensorFlow sees, what is allowed) if there is none. The device is ``tf_twin``'s
    (``tf_twin.use_device``), shared with the 1D twin; determinism is ``tf_twin.configure``'s."""
    return tf_twin.use_device(device)



def to_tensors(arrays: dict) -> dict:
    """{name: NumPy array} -> {name: tensor}, same dtype and values."""
    return {k: tf.constant(v) for k, v in arrays.items()}


def to_numpy(tensors: dict) -> dict:
    """{name: tensor} -> {name: NumPy array} (copies)."""
    return {k: np.array(v) for k, v in tensors.items()}


# ---- layers ---------------------------------------------------------------------------------
def dense(x, w, b=None):
    """y = x W (+ b): x (S, B, n_in), W (S, n_in, n_out), b (S, n_out).

    One output is a dot product, written as a product summed over n_in: XLA's matrix-vector path
    rounds differently for a stack of one than for more.
    """
    if w.shape[-1] == 1:
        y = tf.reduce_sum(x * tf.expand_dims(w[..., 0], -2), -1, keepdims=True)
    else:
        y = product(x, w)
    return y if b is None else y + tf.expand_dims(b, -2)


def _patches(x, k):
    """(S, B, H, W, C) -> (S, B, H/2, W/2, k k C): entry (u, v, c) at (i, j) is xp[2i+u, 2j+v, c]."""
    h, wd = x.shape[2], x.shape[3]
    xp = tf.pad(x, [[0, 0], [0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    return tf.concat([xp[:, :, u:u + h:STRIDE, v:v + wd:STRIDE] for u in range(k) for v in range(k)], axis=-1)


def _bias(y, b):
    """y + b[o] over (S, B, H, W, C)."""
    return y if b is None else y + b[:, None, None, None, :]


def conv(x, w, b=None):
    """y[s,b,i,j,o] = b[o] + sum_{u,v,c} xp[s,b,2i+u,2j+v,c] W[s,u,v,c,o], xp = x zero-padded by 1:
    the patches (S, B H/2 W/2, k k C_in) times W as (S, k k C_in, C_out)."""
    s, n, h, wd, c_in = x.shape
    k, c_out = w.shape[1], w.shape[-1]
    rows = tf.reshape(_patches(x, k), [s, n * (h // STRIDE) * (wd // STRIDE), k * k * c_in])
    y = product(rows, tf.reshape(w, [s, k * k * c_in, c_out]))
    return _bias(tf.reshape(y, [s, n, h // STRIDE, wd // STRIDE, c_out]), b)


def conv_transpose(x, w, b=None):
    """y[s,b,p,q,o] = b[o] + sum x[s,b,i,j,c] W[s,u,v,c,o] over 2i+u-1 = p, 2j+v-1 = q (conv's adjoint).

    taps = x (S, B H W, C_in) times W as (S, C_in, k k C_out); with u = 2a + r (k = 4 = 2 * stride), tap
    (u, v) of input pixel (i, j) lands at padded position (2(i+a) + r, 2(j+b) + t): the four (a, b)
    blocks are zero-padded into place and added, and the padding row/column on each side dropped.
    """
    s, n, h, wd, c_in = x.shape
    k, c_out = w.shape[1], w.shape[-1]
    assert k == 2 * STRIDE, "the spec's kernel is 4 with stride 2"
    kernel = tf.reshape(tf.transpose(w, [0, 3, 1, 2, 4]), [s, c_in, k * k * c_out])
    taps = product(tf.reshape(x, [s, n * h * wd, c_in]), kernel)
    taps = tf.reshape(taps, [s * n, h, wd, 2, 2, 2, 2, c_out])  # (a, r, b, t); at most 8 axes for eager slicing
    total = None
    for a in range(2):
        for b_ in range(2):
            block = tf.transpose(taps[:, :, :, a, :, b_], [0, 1, 3, 2, 4, 5])  # (S B, H, r, W, t, C_out)
            block = tf.pad(block, [[0, 0], [a, 1 - a], [0, 0], [b_, 1 - b_], [0, 0], [0, 0]])
            total = block if total is None else total + block
    y = tf.reshape(total, [s, n, STRIDE * h + 2 * PAD, STRIDE * wd + 2 * PAD, c_out])[:, :, PAD:-PAD, PAD:-PAD]
    return _bias(y, b)


def _per_channel(t, x):
    """A per-seed, per-channel (S, C) tensor shaped to broadcast against x (S, ..., C)."""
    return tf.reshape(t, [t.shape[0], *([1] * (len(x.shape) - 2)), t.shape[-1]])


def batch_norm(x, gamma, beta):
    """Training mode, per seed and channel over the other axes: (y, mu, var), mu = mean(x),
    var = mean((x - mu)^2) (biased), y = (x - mu) (gamma / sqrt(var + eps)) + beta, eps = 1e-5."""
    axes = list(range(1, len(x.shape) - 1))
    mu = tf.reduce_mean(x, axes)
    d = x - _per_channel(mu, x)
    var = tf.reduce_mean(d * d, axes)
    return d * _per_channel(gamma / tf.sqrt(var + BN_EPS), x) + _per_channel(beta, x), mu, var


def batch_norm_inference(x, gamma, beta, mean, var):
    """y = (x - mean) (gamma / sqrt(var + eps)) + beta with the running statistics."""
    return (x - _per_channel(mean, x)) * _per_channel(gamma / tf.sqrt(var + BN_EPS), x) + _per_channel(beta, x)


def running_stats(mean, var, batch_mean, batch_var, n):
    """((1 - m) r_mu + m mu, (1 - m) r_var + m var n / (n - 1)), m = 0.1 (PyTorch's momentum, unbiased variance)."""
    m = BN_MOMENTUM
    return (1 - m) * mean + m * batch_mean, (1 - m) * var + m * (batch_var * (n / (n - 1)))


def leaky_relu(x):
    """max(x, 0) + 0.2 min(x, 0), as x > 0 ? x : 0.2 x (the same numbers; derivative 0.2 at 0).

    Not ``tf.nn.leaky_relu``: its slope is a 32-bit attribute, 0.2f = 0.20000000298 in float64.
    """
    return tf.where(x > 0, x, LEAKY_SLOPE * x)


def softplus(x):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), the exact formula (no threshold cut-off), taken per side:
    x + log1p(exp(-x)) where x > 0, log1p(exp(x)) elsewhere (the same numbers). Each side sees its own
    values only (0 on the other), and autodiff then gives sigmoid(x) everywhere: the one-line form's
    derivative is max's subgradient 1 at x = 0, and adding 0.5 - 0.5 to tiny sigmoid(x) loses them.
    """
    pos = x > 0
    zero = tf.zeros_like(x)
    xp, xn = tf.where(pos, x, zero), tf.where(pos, zero, x)
    return tf.where(pos, xp + tf.math.log1p(tf.exp(-xp)), tf.math.log1p(tf.exp(xn)))


# ---- networks -------------------------------------------------------------------------------
def _bn(x, p, stats, name, moments):
    """Batch norm ``name``: training mode if stats is None (its (mu, var, n) put in moments), else inference."""
    gamma, beta = p[f"{name}.gamma"], p[f"{name}.beta"]
    if stats is not None:
        return batch_norm_inference(x, gamma, beta, stats[f"{name}.mean"], stats[f"{name}.var"])
    y, mu, var = batch_norm(x, gamma, beta)
    moments[name] = (mu, var, math.prod(x.shape[1:-1]))
    return y


def generator(config: ImageConfig, p: dict, z, stats=None):
    """G(z) -> (images (S, B, H, W), moments {bn name: (mu, var, n)}); training mode if stats is None."""
    s, n, side = z.shape[0], z.shape[1], config.image_size
    moments: dict = {}
    if config.model == "linear":
        h = leaky_relu(dense(z, p["g0.w"], p["g0.b"]))
        return tf.reshape(tf.sigmoid(dense(h, p["g1.w"], p["g1.b"])), [s, n, side, side]), moments
    s0, f2 = config.first_map, 2 * config.base_width
    h = tf.reshape(dense(z, p["g0.w"]), [s, n, s0, s0, f2])
    h = leaky_relu(_bn(h, p, stats, "g0.bn", moments))
    h = leaky_relu(_bn(conv_transpose(h, p["g1.w"]), p, stats, "g1.bn", moments))
    return tf.squeeze(tf.sigmoid(conv_transpose(h, p["g2.w"], p["g2.b"])), -1), moments


def update_stats(stats: dict, moments: dict) -> dict:
    """G's running statistics after a training-mode pass with ``moments`` (no gradient through them)."""
    out = dict(stats)
    for name, (mu, var, n) in moments.items():
        out[f"{name}.mean"], out[f"{name}.var"] = running_stats(
            stats[f"{name}.mean"], stats[f"{name}.var"], tf.stop_gradient(mu), tf.stop_gradient(var), n)
    return out


def discriminator(config: ImageConfig, p: dict, x):
    """D(x) -> logits (S, B) for x (S, B, H, W), batch statistics; flatten row-major over (H, W, C)."""
    s, n = x.shape[0], x.shape[1]
    if config.model == "linear":
        h = leaky_relu(dense(tf.reshape(x, [s, n, -1]), p["d0.w"], p["d0.b"]))
        return tf.squeeze(dense(h, p["d1.w"], p["d1.b"]), -1)
    h = leaky_relu(conv(tf.expand_dims(x, -1), p["d0.w"], p["d0.b"]))
    h = leaky_relu(_bn(conv(h, p["d1.w"]), p, None, "d1.bn", {}))
    return tf.squeeze(dense(tf.reshape(h, [s, n, -1]), p["d2.w"], p["d2.b"]), -1)


# ---- losses ---------------------------------------------------------------------------------
def d_losses(l_real, l_fake):
    """Per seed (L_D, loss/real, loss/fake): loss/real = mean softplus(-l_r), loss/fake = mean softplus(l_f)."""
    real, fake = tf.reduce_mean(softplus(-l_real), -1), tf.reduce_mean(softplus(l_fake), -1)
    return real + fake, real, fake


def g_loss(config: ImageConfig, l_fake):
    """Per seed: non-saturating mean softplus(-l_f), or saturating -mean softplus(l_f)."""
    if config.g_loss == "non_saturating":
        return tf.reduce_mean(softplus(-l_fake), -1)
    return -tf.reduce_mean(softplus(l_fake), -1)


# ---- parameters: one flat (S, P) tensor per player ------------------------------------------
def flatten(params: dict):
    """A player's (S, ...) parameters, in draw order, concatenated into one (S, P) tensor."""
    return tf.concat([tf.reshape(v, [v.shape[0], -1]) for v in params.values()], axis=1)


def unflatten(flat, shapes) -> dict:
    """Views of flat (S, P) as named parameters; ``shapes`` as from ``ganrepro.image.weights``."""
    pieces = tf.split(flat, [math.prod(shape) for _, shape, _ in shapes], axis=1)
    return {name: tf.reshape(piece, [-1, *shape]) for (name, shape, _), piece in zip(shapes, pieces, strict=True)}


# ---- optimizer (on a player's flat parameter tensor) ----------------------------------------
def adam_update(theta, grad, slots, lr):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; theta - alpha_t m / (sqrt(v) + eps), alpha_t = lr."""
    m, v = slots
    m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grad
    v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * (grad * grad)
    return theta - lr * m / (tf.sqrt(v) + ADAM_EPS), (m, v)


def l2_norm(t):
    """Per seed L2 norm over all entries of an (S, ...) tensor."""
    flat = tf.reshape(t, [t.shape[0], -1])
    return tf.sqrt(tf.reduce_sum(flat * flat, -1))


# ---- training -------------------------------------------------------------------------------
def d_step(config: ImageConfig, g_flat, g_stats, d_flat, d_slots, x, z, lr):
    """D's update on L_D at (x, G(z)), G in training mode: (D, slots, G's stats, {loss/D, loss/real, loss/fake})."""
    fake, moments = generator(config, unflatten(g_flat, generator_shapes(config)), z)
    fake = tf.stop_gradient(fake)
    g_stats = update_stats(g_stats, moments)
    with tf.GradientTape() as tape:
        tape.watch(d_flat)
        d_params = unflatten(d_flat, discriminator_shapes(config))
        loss, real, fake_loss = d_losses(discriminator(config, d_params, x), discriminator(config, d_params, fake))
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, d_flat)
    d_flat, d_slots = adam_update(d_flat, grad, d_slots, lr)
    return d_flat, d_slots, g_stats, {"loss/D": loss, "loss/real": real, "loss/fake": fake_loss}


def g_step(config: ImageConfig, g_flat, g_stats, g_slots, d_flat, z, lr):
    """G's update on the G loss at G(z) through D; with freeze_g the gradient is computed but not applied.
    Returns (G, slots, G's stats, {loss/G, norms/G, norms/D})."""
    with tf.GradientTape() as tape:
        tape.watch(g_flat)
        fake, moments = generator(config, unflatten(g_flat, generator_shapes(config)), z)
        loss = g_loss(config, discriminator(config, unflatten(d_flat, discriminator_shapes(config)), fake))
        total = tf.reduce_sum(loss)
    grad, grad_fake = tape.gradient(total, [g_flat, fake])
    g_stats = update_stats(g_stats, moments)
    if not config.freeze_g:
        g_flat, g_slots = adam_update(g_flat, grad, g_slots, lr)
    return g_flat, g_slots, g_stats, {"loss/G": loss, "norms/G": l2_norm(grad), "norms/D": l2_norm(grad_fake)}


_COMPILED: dict = {}


def _compiled(kind: str, config: ImageConfig, build):
    """One XLA-compiled function per (kind, config without seeds); XLA caches per input shape."""
    key = (kind, config.with_seeds((0,)))
    if key not in _COMPILED:
        _COMPILED[key] = tf.function(build(config), jit_compile=True, autograph=False)
    return _COMPILED[key]


@_on_device
def init_state(config: ImageConfig, weights: dict, train_images: np.ndarray) -> dict:
    """The training state: flat weights and Adam slots (zero) of G and D, G's running statistics, the
    images, and the number of seeds (a lone seed is kept as a stack of two, see ``image_interface.paired``)."""
    weights = paired(weights)
    g, d = flatten(to_tensors(weights["G"])), flatten(to_tensors(weights["D"]))
    return {"G": g, "D": d, "G_slots": (tf.zeros_like(g), tf.zeros_like(g)),
            "D_slots": (tf.zeros_like(d), tf.zeros_like(d)), "G_stats": to_tensors(weights["G_stats"]),
            "images": tf.constant(np.asarray(train_images, dtype=config.dtype)), "seeds": len(config.seeds)}


def _build_train_loop(config: ImageConfig):
    """``train_chunk``'s steps as one ``tf.while_loop``: d_step, then g_step, one curve row per step."""
    def loop(state, images, idx, z_d, z_g, lr_d, lr_g, n_valid):
        def body(i, state, curves):
            x = tf.gather(images, tf.gather(idx, i))
            d, d_slots, g_stats, d_curves = d_step(
                config, state["G"], state["G_stats"], state["D"], state["D_slots"], x, tf.gather(z_d, i),
                tf.gather(lr_d, i))
            g, g_slots, g_stats, g_curves = g_step(
                config, state["G"], g_stats, state["G_slots"], d, tf.gather(z_g, i), tf.gather(lr_g, i))
            row = tf.stack(in_curve_order(d_curves, g_curves), axis=-1)
            curves = tf.tensor_scatter_nd_update(curves, [[i]], row[None])
            return i + 1, {"G": g, "D": d, "G_slots": g_slots, "D_slots": d_slots, "G_stats": g_stats}, curves

        curves = tf.zeros([idx.shape[0], idx.shape[1], len(CURVES)], dtype=z_d.dtype)
        _, state, curves = tf.while_loop(lambda i, *_: i < n_valid, body, (tf.constant(0), state, curves))
        return state, curves
    return loop


@_on_device
def train_chunk(config: ImageConfig, state: dict, chunk: ImageChunk):
    """Run the chunk's valid steps; curves (L, S, len(CURVES)) in the order of ``CURVES``."""
    loop = _compiled("train", config, _build_train_loop)
    core = {k: state[k] for k in ("G", "D", "G_slots", "D_slots", "G_stats")}
    arrays = (*paired((chunk.idx, chunk.z_d, chunk.z_g), 1), chunk.lr_d, chunk.lr_g)
    core, curves = loop(core, state["images"], *(tf.constant(a) for a in arrays), tf.constant(chunk.n_valid))
    return dict(state, **core), unpaired(curves.numpy(), state["seeds"], 1)


@_on_device
def state_weights(config: ImageConfig, state: dict) -> dict:
    """{"G", "G_stats", "D"} of a state, as NumPy arrays."""
    weights = {"G": to_numpy(unflatten(state["G"], generator_shapes(config))), "G_stats": to_numpy(state["G_stats"]),
               "D": to_numpy(unflatten(state["D"], discriminator_shapes(config)))}
    return {k: unpaired(v, state["seeds"]) for k, v in weights.items()}


# ---- evaluation and the agreement ladder ----------------------------------------------------
def _build_generate(config: ImageConfig):
    """G in inference mode on one group of latent points."""
    def run(p, stats, z):
        return generator(config, p, z, stats)[0]
    return run


@_on_device
def generate(config: ImageConfig, g_weights: dict, g_stats: dict, z: np.ndarray) -> np.ndarray:
    """G(z) in inference mode, z (S, N, Z) -> (S, N, H, W), in groups of GENERATE_GROUP points (zero-padded)."""
    s, n = z.shape[0], z.shape[1]
    groups = -(-n // GENERATE_GROUP)
    padded = np.zeros((max(s, 2), groups * GENERATE_GROUP, z.shape[2]), dtype=z.dtype)
    padded[:, :n] = paired(z)
    run = _compiled("generate", config, _build_generate)
    p, stats = to_tensors(paired(g_weights)), to_tensors(paired(g_stats))
    out = [run(p, stats, tf.constant(part)).numpy() for part in np.split(padded, groups, axis=1)]
    return np.concatenate(out, axis=1)[:s, :n]


def _build_forward_and_gradients(config: ImageConfig):
    """``forward_and_gradients`` on tensors: two tapes, D's loss w.r.t. D, then G's loss w.r.t. G and G(z_g)."""
    def run(g, d, stats, x, z, z_g):
        with tf.GradientTape() as tape:
            tape.watch(list(d.values()))
            g_out, moments = generator(config, g, z)
            l_real, l_fake = discriminator(config, d, x), discriminator(config, d, g_out)
            loss_d, loss_real, loss_fake = d_losses(l_real, l_fake)
            total = tf.reduce_sum(loss_d)
        grads_d = tape.gradient(total, list(d.values()))
        stats = update_stats(stats, moments)
        with tf.GradientTape() as tape:
            tape.watch(list(g.values()))
            g_out_g, moments = generator(config, g, z_g)
            loss_g = g_loss(config, discriminator(config, d, g_out_g))
            total = tf.reduce_sum(loss_g)
        *grads_g, grad_g_out = tape.gradient(total, [*g.values(), g_out_g])
        stats = update_stats(stats, moments)
        out = {"l_real": l_real, "l_fake": l_fake, "loss_d": loss_d, "loss_real": loss_real, "loss_fake": loss_fake,
               "loss_g": loss_g, "g_out": g_out, "grad_g_out": grad_g_out}
        out.update({f"grad_d/{k}": v for k, v in zip(d, grads_d, strict=True)})
        out.update({f"grad_g/{k}": v for k, v in zip(g, grads_g, strict=True)})
        out.update({f"stats/{k}": v for k, v in stats.items()})
        return out
    return run


@_on_device
def forward_and_gradients(config: ImageConfig, weights: dict, x: np.ndarray, z: np.ndarray, z_g: np.ndarray) -> dict:
    """Forward values, losses, gradients and running statistics at fixed weights (see ``image_interface``)."""
    s = x.shape[0]
    weights, x, z, z_g = paired((weights, x, z, z_g))
    run = _compiled("forward", config, _build_forward_and_gradients)
    out = run(to_tensors(weights["G"]), to_tensors(weights["D"]), to_tensors(weights["G_stats"]),
              tf.constant(x), tf.constant(z), tf.constant(z_g))
    return unpaired(to_numpy(out), s)


@_on_device
def vjp(fn, arrays: list, cotangent: np.ndarray):
    """(y, gradients of sum(cotangent * y) w.r.t. each array) for y = fn(*tensors) (its first output if a tuple),
    compiled by XLA like the training loop."""
    def run(inputs, cot):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = fn(*inputs)
            y = y[0] if isinstance(y, tuple) else y
            total = tf.reduce_sum(y * cot)
        grads = tape.gradient(total, inputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return y, grads

    y, grads = tf.function(run, jit_compile=True, autograph=False)([tf.constant(a) for a in arrays],
                                                                     tf.constant(cotangent))
    return y.numpy(), [g.numpy() for g in grads]
