"""The PyTorch image twin: docs/images.md (linear GAN and DCGAN) for a stack of S seeds, in eager PyTorch.

Diff this file against ``tf_image.py``: the two define the same functions in the same order and
differ only in framework idioms. Activations are (S, B, H, W, C), kernels (S, k, k, C_in, C_out);
importing ``torch_twin`` first runs its ``configure()`` (deterministic kernels, no TF32, one thread,
ATen's scalar kernels).

Convolutions are patch matrices times the kernel, as in the TensorFlow twin, with PyTorch's own
im2col and col2im (``F.unfold``, ``F.fold``). Every float32 matrix product is the exact product
(``torch_exact_product``, docs/images.md#products), whose bits no library chooses: the twin's float32
layers give the TensorFlow twin's bits, on any CPU. Batch norm is PyTorch's native one, on the seeds
folded into the channels, (B, S*C, H, W). Square roots are correctly rounded (``torch_twin._sqrt``),
not MKL's. A lone seed runs as a stack of two (``image_interface.paired``), as in the TensorFlow twin.

Device: ``use_device`` picks it (``torch_twin.use_device``, whose ``DEVICE`` this twin's tensors are
made on too); the NumPy-facing entry points copy their inputs there and their results back. On
CUDA the same code runs (the exact products' integer sums in float64 on cuBLAS), under
``torch_twin.configure``'s determinism: deterministic algorithms (every op here has a deterministic
CUDA kernel: no scatter, index_add or cumsum; col2im gathers), cuDNN deterministic and not
benchmarking, TF32 off, cuBLAS's fixed workspace.
"""
from __future__ import annotations

import math
import os

os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")  # as torch_twin sets it, before torch is imported here
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import torch
import torch.nn.functional as F

from ganrepro.image.config import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, BN_EPS, BN_MOMENTUM, LEAKY_SLOPE, ImageConfig
from ganrepro.image.streams import ImageChunk
from ganrepro.image.weights import discriminator_shapes, generator_shapes

from . import torch_twin  # its import runs configure(): the deterministic set-up; its DEVICE is ours
from .image_interface import CURVES, GENERATE_GROUP, paired, unpaired
from .interface import in_curve_order
from .torch_exact_product import product  # float32 products whose bits no library chooses
from .torch_twin import _host, _sqrt, _tensor  # NumPy to the chosen device and back; a correctly rounded sqrt

NAME = "torch"
STRIDE, PAD = 2, 1


def versions() -> dict:
    """{library: version} of the framework and NumPy, for the records."""
    return {"torch": torch.__version__, "numpy": np.__version__}


def use_device(device: str) -> dict:
    """Run on ``device`` ("cpu", or "cuda": the current CUDA GPU); its device_info. ``DeviceUnavailable``
    (one line: what PyTorch sees, what is allowed) if there is none. The device is ``torch_twin``'s
    (``torch_twin.use_device``), shared with the 1D twin; determinism on CUDA is ``torch_twin.configure``'s."""
    return torch_twin.use_device(device)


def to_tensors(arrays: dict) -> dict:
    """{name: NumPy array} -> {name: tensor on the device}, same dtype and values."""
    return {k: _tensor(np.array(v)) for k, v in arrays.items()}


def to_numpy(tensors: dict) -> dict:
    """{name: tensor} -> {name: NumPy array} (copies)."""
    return {k: _host(v).copy() for k, v in tensors.items()}



# ---- layers ---------------------------------------------------------------------------------
def dense(x, w, b=None):
    """y = x W (+ b): x (S, B, n_in), W (S, n_in, n_out), b (S, n_out).

    One output is a dot product, written as a product summed over n_in (as the TensorFlow twin does);
    more are the exact product (``torch_exact_product``).
    """
    y = (x * w[..., 0].unsqueeze(-2)).sum(-1, keepdim=True) if w.shape[-1] == 1 else product(x, w)
    return y if b is None else y + b.unsqueeze(-2)


def _bias(y, b):
    """y + b[o] over (S, B, H, W, C)."""
    return y if b is None else y + b[:, None, None, None, :]


def conv(x, w, b=None):
    """y[s,b,i,j,o] = b[o] + sum_{u,v,c} xp[s,b,2i+u,2j+v,c] W[s,u,v,c,o], xp = x zero-padded by 1:
    the patches (S, B H/2 W/2, C_in k k) times W as (S, C_in k k, C_out).

    The patches are ``F.unfold``'s (im2col), whose entries run (c, u, v) where the TensorFlow twin's run
    (u, v, c); the exact product does not depend on the order of its K terms, so the two agree bit for bit.
    """
    s, n, h, wd, c_in = x.shape
    k, c_out = w.shape[1], w.shape[-1]
    cols = F.unfold(x.reshape(s * n, h, wd, c_in).permute(0, 3, 1, 2), k, padding=PAD, stride=STRIDE)
    rows = cols.transpose(1, 2).reshape(s, n * (h // STRIDE) * (wd // STRIDE), c_in * k * k)
    y = product(rows, w.permute(0, 3, 1, 2, 4).reshape(s, c_in * k * k, c_out))
    return _bias(y.reshape(s, n, h // STRIDE, wd // STRIDE, c_out), b)


def conv_transpose(x, w, b=None):
    """y[s,b,p,q,o] = b[o] + sum x[s,b,i,j,c] W[s,u,v,c,o] over 2i+u-1 = p, 2j+v-1 = q (conv's adjoint).

    taps = x (S, B H W, C_in) times W as (S, C_in, C_out k k), each tap then added into its output pixel by
    ``F.fold`` (col2im): a pixel's taps in the order (u, v), from zero, the order of the TensorFlow twin's
    four blocks.
    """
    s, n, h, wd, c_in = x.shape
    k, c_out = w.shape[1], w.shape[-1]
    kernel = w.permute(0, 3, 4, 1, 2).reshape(s, c_in, c_out * k * k)
    taps = product(x.reshape(s, n * h * wd, c_in), kernel)
    cols = taps.reshape(s * n, h * wd, c_out * k * k).transpose(1, 2)
    y = F.fold(cols, (STRIDE * h, STRIDE * wd), k, padding=PAD, stride=STRIDE)  # (S B, C_out, 2H, 2W)
    return _bias(y.reshape(s, n, c_out, STRIDE * h, STRIDE * wd).permute(0, 1, 3, 4, 2), b)


def _fold(x):
    """(S, B, H, W, C) -> (B, S*C, H, W): PyTorch's NCHW with the seeds folded into the channels (seed-major)."""
    s, n, h, wd, c = x.shape
    return x.permute(1, 0, 4, 2, 3).reshape(n, s * c, h, wd)


def _unfold(y, s):
    """(B, S*C, H, W) -> (S, B, H, W, C)."""
    n, sc, h, wd = y.shape
    return y.reshape(n, s, sc // s, h, wd).permute(1, 0, 3, 4, 2)


def _batch_norm_folded(x, gamma, beta):
    """batch_norm on a folded (B, S*C, H, W) tensor, per folded channel over (B, H, W); mu and var as (S, C).

    PyTorch's native batch norm (one fused kernel forward and backward, 2 to 4 times faster than the
    formula's separate operations). Its batch moments are read back through its running-statistics
    update, with momentum 1 from zero buffers: the mean and the unbiased variance var_u exactly, and
    var = var_u (n - 1) / n.
    """
    mean = torch.zeros(gamma.numel(), dtype=x.dtype, device=x.device)
    var_u = torch.zeros(gamma.numel(), dtype=x.dtype, device=x.device)
    y = F.batch_norm(x, mean, var_u, gamma.reshape(-1), beta.reshape(-1), training=True, momentum=1.0, eps=BN_EPS)
    n = x.shape[0] * x.shape[2] * x.shape[3]
    return y, mean.reshape(gamma.shape), (var_u * ((n - 1) / n)).reshape(gamma.shape)


def _batch_norm_inference_folded(x, gamma, beta, mean, var):
    """batch_norm_inference on a folded (B, S*C, H, W) tensor (PyTorch's native batch norm, inference mode)."""
    return F.batch_norm(x, mean.reshape(-1), var.reshape(-1), gamma.reshape(-1), beta.reshape(-1), training=False,
                        eps=BN_EPS)


def batch_norm(x, gamma, beta):
    """Training mode, per seed and channel over (B, H, W) of x (S, B, H, W, C): (y, mu, var), mu = mean(x),
    var = mean((x - mu)^2) (biased), y = (x - mu) (gamma / sqrt(var + eps)) + beta, eps = 1e-5."""
    y, mu, var = _batch_norm_folded(_fold(x), gamma, beta)
    return _unfold(y, x.shape[0]), mu, var


def batch_norm_inference(x, gamma, beta, mean, var):
    """y = (x - mean) (gamma / sqrt(var + eps)) + beta with the running statistics, x (S, B, H, W, C)."""
    return _unfold(_batch_norm_inference_folded(_fold(x), gamma, beta, mean, var), x.shape[0])


def running_stats(mean, var, batch_mean, batch_var, n):
    """((1 - m) r_mu + m mu, (1 - m) r_var + m var n / (n - 1)), m = 0.1 (PyTorch's momentum, unbiased variance)."""
    m = BN_MOMENTUM
    return (1 - m) * mean + m * batch_mean, (1 - m) * var + m * (batch_var * (n / (n - 1)))


def leaky_relu(x):
    """max(x, 0) + 0.2 min(x, 0), as x times a factor 1 (x > 0) or 0.2 (the same numbers; derivative 0.2 at 0).

    Not ``F.leaky_relu`` nor ``torch.where``: under ATEN_CPU_CAPABILITY=default their kernels branch
    per element, 5 to 40 times slower on random signs; the factor (x > 0) 0.8 + 0.2 is branch-free
    and exactly 1 or 0.2.
    """
    return x * (x > 0).to(x.dtype).mul_(1 - LEAKY_SLOPE).add_(LEAKY_SLOPE)


def softplus(x):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), the exact formula (no threshold cut-off), taken per side:
    x + log1p(exp(-x)) where x > 0, log1p(exp(x)) elsewhere (the same numbers). Each side sees its own
    values only (0 on the other), and autodiff then gives sigmoid(x) everywhere: the one-line form's
    derivative is max's subgradient 1 at x = 0, and adding 0.5 - 0.5 to tiny sigmoid(x) loses them.
    """
    pos = x > 0
    xp, xn = torch.where(pos, x, 0.0), torch.where(pos, 0.0, x)
    return torch.where(pos, xp + torch.log1p(torch.exp(-xp)), torch.log1p(torch.exp(xn)))


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
        return torch.sigmoid(dense(h, p["g1.w"], p["g1.b"])).reshape(s, n, side, side), moments
    s0, f2 = config.first_map, 2 * config.base_width
    h = dense(z, p["g0.w"]).reshape(s, n, s0, s0, f2)
    h = leaky_relu(_bn(h, p, stats, "g0.bn", moments))
    h = leaky_relu(_bn(conv_transpose(h, p["g1.w"]), p, stats, "g1.bn", moments))
    return torch.sigmoid(conv_transpose(h, p["g2.w"], p["g2.b"])).squeeze(-1), moments


def update_stats(stats: dict, moments: dict) -> dict:
    """G's running statistics after a training-mode pass with ``moments`` (detached from any graph)."""
    out = dict(stats)
    for name, (mu, var, n) in moments.items():
        out[f"{name}.mean"], out[f"{name}.var"] = running_stats(
            stats[f"{name}.mean"], stats[f"{name}.var"], mu.detach(), var.detach(), n)
    return out


def discriminator(config: ImageConfig, p: dict, x):
    """D(x) -> logits (S, B) for x (S, B, H, W), batch statistics; flatten row-major over (H, W, C)."""
    s, n = x.shape[0], x.shape[1]
    if config.model == "linear":
        h = leaky_relu(dense(x.reshape(s, n, -1), p["d0.w"], p["d0.b"]))
        return dense(h, p["d1.w"], p["d1.b"]).squeeze(-1)
    h = leaky_relu(conv(x.unsqueeze(-1), p["d0.w"], p["d0.b"]))
    h = leaky_relu(_bn(conv(h, p["d1.w"]), p, None, "d1.bn", {}))
    return dense(h.reshape(s, n, -1), p["d2.w"], p["d2.b"]).squeeze(-1)


# ---- losses ---------------------------------------------------------------------------------
def d_losses(l_real, l_fake):
    """Per seed (L_D, loss/real, loss/fake): loss/real = mean softplus(-l_r), loss/fake = mean softplus(l_f)."""
    real, fake = softplus(-l_real).mean(-1), softplus(l_fake).mean(-1)
    return real + fake, real, fake


def g_loss(config: ImageConfig, l_fake):
    """Per seed: non-saturating mean softplus(-l_f), or saturating -mean softplus(l_f)."""
    if config.g_loss == "non_saturating":
        return softplus(-l_fake).mean(-1)
    return -softplus(l_fake).mean(-1)


# ---- parameters: one flat (S, P) tensor per player ------------------------------------------
def flatten(params: dict):
    """A player's (S, ...) parameters, in draw order, concatenated into one (S, P) tensor."""
    return torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)


def unflatten(flat, shapes) -> dict:
    """Views of flat (S, P) as named parameters; ``shapes`` as from ``ganrepro.image.weights``."""
    pieces = torch.split(flat, [math.prod(shape) for _, shape, _ in shapes], dim=1)
    return {name: piece.reshape(-1, *shape) for (name, shape, _), piece in zip(shapes, pieces, strict=True)}


# ---- optimizer (on a player's flat parameter tensor) ----------------------------------------
def adam_update(theta, grad, slots, lr):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; theta - alpha_t m / (sqrt(v) + eps), alpha_t = lr."""
    m, v = slots
    m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grad
    v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * (grad * grad)
    return theta - lr * m / (_sqrt(v) + ADAM_EPS), (m, v)


def l2_norm(t):
    """Per seed L2 norm over all entries of an (S, ...) tensor."""
    flat = t.reshape(t.shape[0], -1)
    return _sqrt((flat * flat).sum(-1))


# ---- training -------------------------------------------------------------------------------
def d_step(config: ImageConfig, g_flat, g_stats, d_flat, d_slots, x, z, lr):
    """D's update on L_D at (x, G(z)), G in training mode: (D, slots, G's stats, {loss/D, loss/real, loss/fake})."""
    with torch.no_grad():
        fake, moments = generator(config, unflatten(g_flat, generator_shapes(config)), z)
        g_stats = update_stats(g_stats, moments)
    d_flat = d_flat.detach().requires_grad_(True)
    d_params = unflatten(d_flat, discriminator_shapes(config))
    loss, real, fake_loss = d_losses(discriminator(config, d_params, x), discriminator(config, d_params, fake))
    (grad,) = torch.autograd.grad(loss.sum(), d_flat)
    with torch.no_grad():
        d_flat, d_slots = adam_update(d_flat, grad, d_slots, lr)
    return d_flat, d_slots, g_stats, {"loss/D": loss.detach(), "loss/real": real.detach(),
                                      "loss/fake": fake_loss.detach()}


def g_step(config: ImageConfig, g_flat, g_stats, g_slots, d_flat, z, lr):
    """G's update on the G loss at G(z) through D; with freeze_g the gradient is computed but not applied.
    Returns (G, slots, G's stats, {loss/G, norms/G, norms/D})."""
    g_flat = g_flat.detach().requires_grad_(True)
    fake, moments = generator(config, unflatten(g_flat, generator_shapes(config)), z)
    g_stats = update_stats(g_stats, moments)
    loss = g_loss(config, discriminator(config, unflatten(d_flat, discriminator_shapes(config)), fake))
    grad, grad_fake = torch.autograd.grad(loss.sum(), [g_flat, fake])
    with torch.no_grad():
        if not config.freeze_g:
            g_flat, g_slots = adam_update(g_flat, grad, g_slots, lr)
        curves = {"loss/G": loss.detach(), "norms/G": l2_norm(grad), "norms/D": l2_norm(grad_fake)}
    return g_flat.detach(), g_slots, g_stats, curves


def init_state(config: ImageConfig, weights: dict, train_images: np.ndarray) -> dict:
    """The training state: flat weights and Adam slots (zero) of G and D, G's running statistics, the
    images, and the number of seeds (a lone seed is kept as a stack of two, see ``image_interface.paired``)."""
    weights = paired(weights)
    g, d = flatten(to_tensors(weights["G"])), flatten(to_tensors(weights["D"]))
    return {"G": g, "D": d, "G_slots": (torch.zeros_like(g), torch.zeros_like(g)),
            "D_slots": (torch.zeros_like(d), torch.zeros_like(d)), "G_stats": to_tensors(weights["G_stats"]),
            "images": _tensor(np.array(train_images, dtype=config.dtype)), "seeds": len(config.seeds)}


def train_chunk(config: ImageConfig, state: dict, chunk: ImageChunk):
    """Run the chunk's valid steps; curves (L, S, len(CURVES)) in the order of ``CURVES``."""
    images, idx = state["images"], _tensor(paired(chunk.idx, 1))
    z_d, z_g = _tensor(paired(chunk.z_d, 1)), _tensor(paired(chunk.z_g, 1))
    lr_d, lr_g = chunk.lr_d.tolist(), chunk.lr_g.tolist()
    g, d, g_slots, d_slots, g_stats = state["G"], state["D"], state["G_slots"], state["D_slots"], state["G_stats"]
    curves = torch.zeros(idx.shape[0], idx.shape[1], len(CURVES), dtype=g.dtype, device=g.device)
    for i in range(chunk.n_valid):
        d, d_slots, g_stats, d_curves = d_step(config, g, g_stats, d, d_slots, images[idx[i]], z_d[i], lr_d[i])
        g, g_slots, g_stats, g_curves = g_step(config, g, g_stats, g_slots, d, z_g[i], lr_g[i])
        curves[i] = torch.stack(in_curve_order(d_curves, g_curves), dim=-1)
    state = dict(state, G=g, D=d, G_slots=g_slots, D_slots=d_slots, G_stats=g_stats)
    return state, unpaired(_host(curves), state["seeds"], 1)


def state_weights(config: ImageConfig, state: dict) -> dict:
    """{"G", "G_stats", "D"} of a state, as NumPy arrays."""
    weights = {"G": to_numpy(unflatten(state["G"], generator_shapes(config))), "G_stats": to_numpy(state["G_stats"]),
               "D": to_numpy(unflatten(state["D"], discriminator_shapes(config)))}
    return {k: unpaired(v, state["seeds"]) for k, v in weights.items()}


# ---- evaluation and the agreement ladder ----------------------------------------------------
def generate(config: ImageConfig, g_weights: dict, g_stats: dict, z: np.ndarray) -> np.ndarray:
    """G(z) in inference mode, z (S, N, Z) -> (S, N, H, W), in groups of GENERATE_GROUP points (zero-padded)."""
    s, n = z.shape[0], z.shape[1]
    groups = -(-n // GENERATE_GROUP)
    padded = np.zeros((max(s, 2), groups * GENERATE_GROUP, z.shape[2]), dtype=z.dtype)
    padded[:, :n] = paired(z)
    p, stats = to_tensors(paired(g_weights)), to_tensors(paired(g_stats))
    with torch.no_grad():
        out = [generator(config, p, _tensor(part), stats)[0] for part in np.split(padded, groups, axis=1)]
    return _host(torch.cat(out, dim=1)[:s, :n])


def forward_and_gradients(config: ImageConfig, weights: dict, x: np.ndarray, z: np.ndarray, z_g: np.ndarray) -> dict:
    """Forward values, losses, gradients and running statistics at fixed weights (see ``image_interface``)."""
    s = x.shape[0]
    weights, x, z, z_g = paired((weights, x, z, z_g))
    g, d, stats = to_tensors(weights["G"]), to_tensors(weights["D"]), to_tensors(weights["G_stats"])
    for v in (*g.values(), *d.values()):
        v.requires_grad_(True)
    g_out, moments = generator(config, g, _tensor(z))
    stats = update_stats(stats, moments)
    l_real, l_fake = discriminator(config, d, _tensor(x)), discriminator(config, d, g_out)
    loss_d, loss_real, loss_fake = d_losses(l_real, l_fake)
    grads_d = torch.autograd.grad(loss_d.sum(), list(d.values()))
    g_out_g, moments = generator(config, g, _tensor(z_g))
    stats = update_stats(stats, moments)
    loss_g = g_loss(config, discriminator(config, d, g_out_g))
    *grads_g, grad_g_out = torch.autograd.grad(loss_g.sum(), [*g.values(), g_out_g])
    out = {"l_real": l_real, "l_fake": l_fake, "loss_d": loss_d, "loss_real": loss_real, "loss_fake": loss_fake,
           "loss_g": loss_g, "g_out": g_out, "grad_g_out": grad_g_out}
    out.update({f"grad_d/{k}": v for k, v in zip(d, grads_d, strict=True)})
    out.update({f"grad_g/{k}": v for k, v in zip(g, grads_g, strict=True)})
    out.update({f"stats/{k}": v for k, v in stats.items()})
    return unpaired(to_numpy(out), s)


def vjp(fn, arrays: list, cotangent: np.ndarray):
    """(y, gradients of sum(cotangent * y) w.r.t. each array) for y = fn(*tensors) (its first output if a tuple)."""
    inputs = [_tensor(np.array(a)).requires_grad_(True) for a in arrays]
    y = fn(*inputs)
    y = y[0] if isinstance(y, tuple) else y
    total = (y * _tensor(cotangent)).sum()
    if not total.requires_grad:  # y does not depend on the inputs through autograd (batch norm's moments)
        return _host(y).copy(), [np.zeros_like(a) for a in arrays]
    grads = torch.autograd.grad(total, inputs, allow_unused=True, materialize_grads=True)
    return _host(y).copy(), [_host(g).copy() for g in grads]
