"""The interface both image twins implement (docs/images.md), as data (``FORWARD_KEYS``) and as a
``typing.Protocol`` (``ImageTwin``) that the modules ``torch_image`` and ``tf_image`` satisfy.

The image track's counterpart of ``interface.py``; its curves are ``interface.CURVES`` (the same six
names in the same order, their image-track meaning in docs/images.md#diagnostics). Weights are
dicts name -> array with a leading seed axis S (names, shapes and draw order from
``ganrepro.image.weights``: {"G", "G_stats", "D"}). Activations are ``(S, B, H, W, C)`` (NHWC with a
seed axis), kernels ``(S, k, k, C_in, C_out)`` (HWIO with a seed axis), images ``(S, B, H, W)``. The
functions taking and returning NumPy arrays (``init_state`` with ``train_chunk`` and
``state_weights``, ``generate``, ``forward_and_gradients``, ``vjp``) are what the driver and the
tests call, and they run on the device ``use_device`` chose (the CPU unless told); the others work
on the framework's tensors and are shared by name so that the two twins can be read, and tested,
side by side. ``tests/test_image_twins.py`` checks that each twin
defines exactly the public functions of ``ImageTwin``, in its order, with its parameter names.

Nothing here imports a framework (NumPy only).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .interface import CURVES

if TYPE_CHECKING:
    from ganrepro.image.config import ImageConfig
    from ganrepro.image.streams import ImageChunk

__all__ = ["CURVES", "FORWARD_KEYS", "GENERATE_GROUP", "ImageTwin", "paired", "unpaired"]

FORWARD_KEYS = ("l_real", "l_fake", "loss_d", "loss_real", "loss_fake", "loss_g", "g_out")
"""Keys of forward_and_gradients' result besides "grad_d/<name>" (of loss_d w.r.t. D's parameters),
"grad_g/<name>" (of loss_g w.r.t. G's), "grad_g_out" (of loss_g w.r.t. G(z_g)) and "stats/<name>"
(G's running statistics after the G(z) and then the G(z_g) pass)."""

GENERATE_GROUP = 500
"""``generate`` runs G on groups of this many latent points (the last one padded with zeros), so that
memory stays bounded and an image does not depend on how many points were asked for."""

def paired(tree, axis: int = 0):
    """A lone seed run as a stack of two: every array of ``tree`` (an array, or a dict, tuple or list
    of them) whose ``axis`` has size 1 is repeated to size 2 (the seed and a copy of it).

    Some kernels take another path for a stack of one than for more (XLA's reductions once the
    size-1 seed axis is dropped), which rounds differently;
    the twins' entry points (``init_state``, ``train_chunk``, ``generate``, ``forward_and_gradients``)
    therefore never compute a stack of one, and a seed alone gives the same bits as in any stack.
    """
    if isinstance(tree, dict):
        return {k: paired(v, axis) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(paired(v, axis) for v in tree)
    return np.concatenate([tree, tree], axis) if tree.shape[axis] == 1 else tree


def unpaired(tree, seeds: int, axis: int = 0):
    """The first ``seeds`` entries along ``axis`` of every array of ``tree`` (undoes ``paired``)."""
    if isinstance(tree, dict):
        return {k: unpaired(v, seeds, axis) for k, v in tree.items()}
    index = (slice(None),) * axis + (slice(0, seeds),)
    return tree[index]


Tensor = Any
"""A framework tensor (``torch.Tensor`` or ``tf.Tensor``) with a leading seed axis S."""


@runtime_checkable
class ImageTwin(Protocol):
    """An image twin module: every public function, in the order the twins define them.

    A module satisfies the protocol through its functions (``self`` stands for the module).
    S seeds, B batch, Z latent size, H = W image side, n = H W pixels, P parameters of a player.
    """

    NAME: str  # the framework's name in ``ganrepro.impls.FRAMEWORKS``

    # ---- conversion
    def versions(self) -> dict:
        """{library: version} of the framework and NumPy, for the records."""

    def use_device(self, device: str) -> dict:
        """Run on ``device`` ("cpu" or "cuda", ``ganrepro.devices``), the 1D twin's device too; its device_info.
        ``DeviceUnavailable`` (a ``UsageError``: exit 2) where the framework sees no such device."""

    def to_tensors(self, arrays: dict) -> dict:
        """{name: NumPy array} -> {name: tensor}, same dtype and values."""

    def to_numpy(self, tensors: dict) -> dict:
        """{name: tensor} -> {name: NumPy array} (copies)."""

    # ---- layers
    def dense(self, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        """y = x W (+ b): x (S, B, n_in), W (S, n_in, n_out), b (S, n_out) -> (S, B, n_out)."""

    def conv(self, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        """y[s,b,i,j,o] = b[o] + sum_{u,v,c} xp[s,b,2i+u,2j+v,c] W[s,u,v,c,o], xp = x zero-padded by 1:
        (S, B, H, W, C_in), W (S, 4, 4, C_in, C_out) -> (S, B, H/2, W/2, C_out)."""

    def conv_transpose(self, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        """The adjoint of conv: y[s,b,p,q,o] = b[o] + sum x[s,b,i,j,c] W[s,u,v,c,o] over 2i+u-1 = p, 2j+v-1 = q:
        (S, B, H, W, C_in), W (S, 4, 4, C_in, C_out) -> (S, B, 2H, 2W, C_out)."""

    def batch_norm(self, x: Tensor, gamma: Tensor, beta: Tensor) -> tuple:
        """Training mode, per seed and channel over all other axes: (y, mu, var), mu = mean(x),
        var = mean((x - mu)^2) (biased), y = gamma (x - mu) / sqrt(var + 1e-5) + beta; mu, var (S, C)."""

    def batch_norm_inference(self, x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        """y = gamma (x - mean) / sqrt(var + 1e-5) + beta with the running statistics (S, C)."""

    def running_stats(self, mean: Tensor, var: Tensor, batch_mean: Tensor, batch_var: Tensor, n: int) -> tuple:
        """(r_mu, r_var) <- ((1 - m) r_mu + m mu, (1 - m) r_var + m var n / (n - 1)), m = 0.1, n values averaged."""

    def leaky_relu(self, x: Tensor) -> Tensor:
        """max(x, 0) + 0.2 min(x, 0)."""

    def softplus(self, x: Tensor) -> Tensor:
        """softplus(x) = max(x, 0) + log1p(exp(-|x|)), the exact formula (no threshold cut-off), taken per side
        (x + log1p(exp(-x)) for x > 0, log1p(exp(x)) else) so that autodiff's derivative is sigmoid(x) everywhere."""

    # ---- networks
    def generator(self, config: ImageConfig, p: dict, z: Tensor, stats: dict | None = None) -> tuple:
        """G(z) -> (images (S, B, H, W), moments {bn name: (mu, var, n)}) for z (S, B, Z).

        stats None: training mode (batch statistics, whose moments are returned); else inference mode with
        the running statistics ``stats`` (moments {}). linear: sigmoid(dense(lrelu(dense(z, h)), n));
        dcgan: sigmoid(convT(lrelu(bn(convT(lrelu(bn(dense(z, s0 s0 2f) as (s0, s0, 2f))), f))), 1) + b)."""

    def update_stats(self, stats: dict, moments: dict) -> dict:
        """G's running statistics {"<bn>.mean", "<bn>.var"} after a training-mode pass with ``moments``."""

    def discriminator(self, config: ImageConfig, p: dict, x: Tensor) -> Tensor:
        """D(x) -> logits (S, B) for images x (S, B, H, W), always with batch statistics.
        linear: dense(lrelu(dense(flatten(x), h)), 1); dcgan: dense(flatten(lrelu(bn(conv(lrelu(conv(x, f) + b),
        2f)))), 1); flatten row-major over (H, W, C)."""

    # ---- losses
    def d_losses(self, l_real: Tensor, l_fake: Tensor) -> tuple:
        """Per seed (L_D, loss/real, loss/fake): loss/real = mean_B softplus(-l_r), loss/fake = mean_B softplus(l_f)."""

    def g_loss(self, config: ImageConfig, l_fake: Tensor) -> Tensor:
        """Per seed: non-saturating mean_B softplus(-l_f) = -mean log sigmoid(l_f), or saturating
        -mean_B softplus(l_f) = mean log(1 - sigmoid(l_f))."""

    # ---- parameters: one flat (S, P) tensor per player
    def flatten(self, params: dict) -> Tensor:
        """A player's (S, ...) parameters, in draw order, concatenated into one (S, P) tensor."""

    def unflatten(self, flat: Tensor, shapes) -> dict:
        """Views of flat (S, P) as named parameters; ``shapes`` as from ``ganrepro.image.weights``."""

    # ---- optimizer
    def adam_update(self, theta: Tensor, grad: Tensor, slots: tuple, lr) -> tuple:
        """Adam in the suite's form, alpha_t = lr: m = 0.5 m + 0.5 g; v = 0.999 v + 0.001 g^2;
        theta - alpha_t m / (sqrt(v) + 1e-8). Returns (theta, (m, v))."""

    def l2_norm(self, t: Tensor) -> Tensor:
        """Per seed L2 norm over all entries of an (S, ...) tensor."""

    # ---- training
    def d_step(self, config: ImageConfig, g_flat: Tensor, g_stats: dict, d_flat: Tensor, d_slots: tuple,
               x: Tensor, z: Tensor, lr) -> tuple:
        """D's update: L_D at (x, G(z)), G in training mode (its running statistics updated), Adam.
        Returns (D, D's slots, G's stats, {loss/D, loss/real, loss/fake}), the curves before the update."""

    def g_step(self, config: ImageConfig, g_flat: Tensor, g_stats: dict, g_slots: tuple, d_flat: Tensor,
               z: Tensor, lr) -> tuple:
        """G's update: the G loss at G(z) through D (training mode, running statistics updated), Adam unless
        config.freeze_g. Returns (G, G's slots, G's stats, {loss/G, norms/G = ||dL_G/dtheta_G||,
        norms/D = ||dL_G/dG(z)||})."""

    def init_state(self, config: ImageConfig, weights: dict, train_images: np.ndarray) -> dict:
        """The training state (flat weights, Adam slots at zero, G's running statistics, the training
        images (N, H, W)) in tensors; opaque."""

    def train_chunk(self, config: ImageConfig, state: dict, chunk: ImageChunk) -> tuple:
        """Run the chunk's n_valid steps (x = images[idx], D's update, then G's on fresh z'):
        (state, curves (L, S, len(CURVES)) NumPy in the order of CURVES, zero in the padding rows)."""

    def state_weights(self, config: ImageConfig, state: dict) -> dict:
        """{"G", "G_stats", "D"} of a state as NumPy arrays, names and shapes as ``initial_weights``."""

    # ---- evaluation and the agreement ladder
    def generate(self, config: ImageConfig, g_weights: dict, g_stats: dict, z: np.ndarray) -> np.ndarray:
        """G(z) in inference mode for z (S, N, Z) -> images (S, N, H, W), in groups of GENERATE_GROUP points."""

    def forward_and_gradients(self, config: ImageConfig, weights: dict, x: np.ndarray, z: np.ndarray,
                              z_g: np.ndarray) -> dict:
        """At fixed weights: FORWARD_KEYS, "grad_d/<name>", "grad_g/<name>", "grad_g_out" and "stats/<name>"
        (see FORWARD_KEYS), NumPy in and out; x (S, B, H, W), z and z_g (S, B, Z)."""

    def vjp(self, fn, arrays: list, cotangent: np.ndarray) -> tuple:
        """(y, [d sum(cotangent * y) / d a for a in arrays]) for y = fn(*tensors of arrays), NumPy in and out
        (the first element of fn's result if it returns a tuple): a layer's value and gradients."""
