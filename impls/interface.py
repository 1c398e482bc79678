"""The one interface both twins implement, as data (``CURVES``, ``FORWARD_KEYS``) and as a
``typing.Protocol`` (``Twin``) that the modules ``torch_twin`` and ``tf_twin`` satisfy.

Weights are dicts name -> array with a leading seed axis S (names and shapes from
``ganrepro.weights``). Batches are (S, B) per step. The functions taking and returning NumPy
arrays (``pretrain``, ``train_chunk``, ``state_weights``, ``generate``, ``discriminate`` and the
ladder's entry points) are what the driver and the tests use; the others work on the framework's
tensors and are shared by name so that the two twins can be read, and tested, side by side.
``tests/test_twin_contract.py`` checks that each twin defines exactly the public functions of
``Twin``, in its order, with its parameter names.

Nothing here imports a framework or the rest of ganrepro (the report imports the constants).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from ganrepro.config import ExperimentConfig
    from ganrepro.streams import Chunk, Pretraining

CURVES = ("loss/D", "loss/G", "loss/real", "loss/fake", "norms/G", "norms/D")
"""Diagnostics of post 004 (docs/losses.md#diagnostics), one value per seed and step:
loss/D = mean(-log D(x) - log(1 - D(G(z)))), loss/G = mean(-log D(G(z'))),
loss/real = mean(-log D(x)), loss/fake = mean(-log(1 - D(G(z)))),
norms/G = ||dL_G / d theta_G||_2, norms/D = ||dL_G / d G(z')||_2 (the gradient D hands back to G).
loss/D, loss/real and loss/fake come from D's update (before it), loss/G and the norms from G's
update of the same step (after D's)."""

FORWARD_KEYS = ("g_out", "d_real", "d_fake", "f_real", "f_fake", "loss_d", "loss_g", "loss_real", "loss_fake")
"""Keys of forward_and_gradients' result besides the gradients "grad_d/<name>", "grad_g/<name>"
(of loss_d w.r.t. D and loss_g w.r.t. G, both at the same weights) and "grad_g_out"."""


def in_curve_order(*parts: dict) -> list:
    """The values of the named curves of ``parts`` (dicts name -> per-seed value, together
    naming every curve once) as a list in the order of ``CURVES``: the layout of a curve row."""
    values = {name: value for part in parts for name, value in part.items()}
    if len(values) != sum(len(part) for part in parts) or set(values) != set(CURVES):
        raise ValueError(f"curve values named {sorted(values)}, expected each of {list(CURVES)} once")
    return [values[name] for name in CURVES]


Tensor = Any
"""A framework tensor (``torch.Tensor`` or ``tf.Tensor``) with a leading seed axis S."""


@runtime_checkable
class Twin(Protocol):
    """A twin module: every public function, in the order the twins define them.

    A module satisfies the protocol through its functions (``self`` stands for the module).
    S seeds, B batch, F features of D's last hidden layer, P parameters of a player.
    """

    NAME: str  # the framework's name in ``ganrepro.impls.FRAMEWORKS``
    STACK_LIMIT: int | None  # the largest stack whose seeds round as each alone; training.train splits above

    # ---- set-up and conversion
    def configure(self) -> None:
        """Deterministic kernels, no TF32, one intra-op thread; run once at import."""

    def versions(self) -> dict:
        """{library: version} of the framework and NumPy, for the records."""

    def use_device(self, device: str) -> dict:
        """Run this twin's work on ``device`` ("cpu" or "cuda"; ``ganrepro.devices``); its device_info."""

    def to_tensors(self, arrays: dict) -> dict:
        """{name: NumPy array} -> {name: tensor}, same dtype and values."""

    def to_numpy(self, tensors: dict) -> dict:
        """{name: tensor} -> {name: NumPy array} (copies)."""

    # ---- layers
    def linear(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        """y = x W + b, batched over the leading axes: x (S, B, in), W (S, in, out), b (S, out)."""

    def softplus(self, x: Tensor) -> Tensor:
        """softplus(x) = max(x, 0) + log1p(exp(-|x|)), the exact formula (no threshold cut-off)."""

    def activation(self, config: ExperimentConfig) -> Any:
        """D's hidden activation: tanh (protocol 2016) or relu (protocol 2017)."""

    def generator(self, p: dict, z: Tensor) -> Tensor:
        """G(z) = linear(softplus(linear(z, h)), 1): z (S, B) -> (S, B)."""

    def minibatch_features(self, f: Tensor, w: Tensor, b: Tensor, config: ExperimentConfig,
                           formulation: str = "production") -> Tensor:
        """o(i)_k = sum_j exp(-(d_k(i, j) + s [i == j])), d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|: (S, B, K)."""

    def discriminator(self, p: dict, x: Tensor, config: ExperimentConfig) -> tuple:
        """D(x) -> (sigmoid(linear(f, 1)) (S, B), its last hidden layer f (S, B, F))."""

    # ---- losses
    def log(self, t: Tensor, config: ExperimentConfig) -> Tensor:
        """log(t), or log(max(t, 1e-5)) in protocol 2017."""

    def d_loss(self, d_real: Tensor, d_fake: Tensor, config: ExperimentConfig) -> Tensor:
        """Per seed: mean_B(-alpha log D(x) - (1 - alpha) log(1 - D(x)) - log(1 - D(G(z)))); alpha = 1: off."""

    def feature_matching(self, f_real: Tensor, f_fake: Tensor, config: ExperimentConfig) -> Tensor:
        """Per seed: paired_l2 = sqrt(sum_i,k (f(x_i) - f(G(z_i)))^2), paired_sq, mean_sq = ||mean_i of the diff||^2."""

    def g_loss(self, d_fake: Tensor, f_real: Tensor, f_fake: Tensor, config: ExperimentConfig) -> Tensor:
        """Per seed: mean_B(-log D(G(z))), mean_B(log(1 - D(G(z)))) or 0, + fm_weight * feature matching."""

    def historical_penalty(self, theta: Tensor, past_sum: Tensor, t, config: ExperimentConfig) -> Tensor:
        """Per seed: lambda * ||theta - past_sum / t||^2; zero at t = 0."""

    def pretrain_loss(self, d_out: Tensor, labels: Tensor) -> Tensor:
        """Per seed: mean_B((D_pre(d) - labels)^2)."""

    # ---- parameters: one flat (S, P) tensor per player
    def flatten(self, params: dict) -> Tensor:
        """A player's (S, ...) parameters, in draw order, concatenated into one (S, P) tensor."""

    def unflatten(self, flat: Tensor, shapes) -> dict:
        """Views of flat (S, P) as named parameters; ``shapes`` as from ``ganrepro.weights``."""

    # ---- optimizers
    def gd_update(self, theta: Tensor, grad: Tensor, lr) -> Tensor:
        """theta <- theta - lr_t * g."""

    def adam_update(self, theta: Tensor, grad: Tensor, slots: tuple, lr) -> tuple:
        """TF1 Adam, alpha_t = lr: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; theta - alpha_t m / (sqrt(v) + eps)."""

    def apply_update(self, config: ExperimentConfig, theta: Tensor, grad: Tensor, slots: tuple, lr) -> tuple:
        """(theta, slots) after one update of the protocol's optimizer (Adam or gradient descent)."""

    def zero_slots(self, config: ExperimentConfig, theta: Tensor) -> tuple:
        """Adam's (m, v) at zero, or () for gradient descent."""

    def l2_norm(self, t: Tensor) -> Tensor:
        """Per seed L2 norm over all entries of an (S, ...) tensor."""

    # ---- training
    def d_step(self, config: ExperimentConfig, g_flat: Tensor, d_flat: Tensor, d_slots: tuple, d_past: Tensor,
               x: Tensor, z: Tensor, noise_real: Tensor, noise_fake: Tensor, lr, t) -> tuple:
        """D's update on L_D at (x, G(z)) + historical penalty: (D, slots, {loss/D, loss/real, loss/fake})."""

    def g_step(self, config: ExperimentConfig, g_flat: Tensor, g_slots: tuple, g_past: Tensor, d_flat: Tensor,
               x: Tensor, z: Tensor, noise_real: Tensor, noise_fake: Tensor, lr, t) -> tuple:
        """G's update on L_G at G(z) + historical penalty: (G, slots, {loss/G, norms/G, norms/D})."""

    def pretrain(self, config: ExperimentConfig, d_weights: dict, data: Pretraining) -> dict:
        """Protocol 2016: P steps of gradient descent on mean((D_pre(d) - pdf(d))^2); NumPy in and out."""

    def init_state(self, config: ExperimentConfig, g_weights: dict, d_weights: dict) -> dict:
        """The training state (flat weights, optimizer slots, sums of past weights) in tensors; opaque."""

    def train_chunk(self, config: ExperimentConfig, state: dict, chunk: Chunk) -> tuple:
        """Run the chunk's valid steps: (state, curves (L, S, len(CURVES)) in the order of CURVES)."""

    def state_weights(self, config: ExperimentConfig, state: dict) -> dict:
        """{"G": g_weights, "D": d_weights} of a state, as NumPy arrays."""

    # ---- evaluation and the agreement ladder
    def generate(self, config: ExperimentConfig, g_weights: dict, z: np.ndarray) -> np.ndarray:
        """G(z) for z (S, N), NumPy in and out."""

    def discriminate(self, config: ExperimentConfig, d_weights: dict, x: np.ndarray) -> np.ndarray:
        """D(x) for x (S, N), fed in consecutive batches of B (the last padded), NumPy in and out."""

    def sort_rows(self, x: np.ndarray) -> np.ndarray:
        """Each row of x (S, N) sorted ascending on the twin's device (exact: the values, reordered)."""

    def forward_and_gradients(self, config: ExperimentConfig, g_weights: dict, d_weights: dict,
                              x: np.ndarray, z: np.ndarray) -> dict:
        """FORWARD_KEYS and the gradients of loss_d (D) and loss_g (G, and G(z)) at fixed weights and inputs."""

    def penalty_and_gradient(self, config: ExperimentConfig, theta: np.ndarray, past_sum: np.ndarray,
                             t: int) -> tuple:
        """The historical penalty per seed and its gradient w.r.t. theta (S, P), NumPy in and out."""

    def optimizer_update(self, config: ExperimentConfig, params: dict, grads: dict, slots: dict,
                         lr: float) -> tuple:
        """(params, slots) after one optimizer update on NumPy arrays; slots: name -> (m, v), or {} (GD)."""
