"""The experiment config: one immutable value that names an experiment exactly.

Everything a run depends on is a field here (or derived from the protocol by a fixed rule),
so that two configs that compare equal describe the same experiment in either framework.
Defaults follow docs/protocols.md#side-by-side; :func:`make_config` fills them in per protocol.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

PROTOCOLS = ("2016", "2017")
DTYPES = ("float32", "float64")
SELF_TERMS = ("exp-1", "exp0", "none")
"""Minibatch-discrimination self term: the diagonal i == j contributes exp(-1) (s = 1,
protocol 2016), exp(0) = 1 (s = 0, protocol 2017) or nothing (s = inf, Salimans' code)."""

G_LOSSES = ("non_saturating", "saturating", "none")
"""G's adversarial term: mean(-log D(G(z))), mean(log(1 - D(G(z)))) (the minimax form), or none."""

FEATURE_MATCHING = ("none", "paired_l2", "paired_sq", "mean_sq")
"""Feature-matching term of G's loss on D's last hidden layer f (docs/techniques.md#feature-matching):
paired_l2 = sqrt(sum_i sum_k (f(x_i)_k - f(G(z_i))_k)^2) (posts 000/001), paired_sq = the same
without the sqrt (the readers' correction), mean_sq = ||mean_i f(x_i) - mean_i f(G(z_i))||^2
(Salimans et al.)."""

NOISE_TARGETS = ("d_inputs", "z")
"""Where instance noise goes: D's inputs (instance noise proper: x and G(z), in both updates),
or the variant of post 000's code (x and the generator's input z, in D's update only)."""

NOISE_SCHEDULES = ("constant", "linear", "exponential")

NOISE_RANGE = 8.0
"""R: generator noise is stratified on [-R, R]; its continuous counterpart is U(-R, R)."""

EVAL_SAMPLES = 10_000
"""Generated samples per evaluation (both the linspace grid and the fresh uniform draws)."""

MAX_SEED = 2**32 - 1

# ---- size limits ---------------------------------------------------------------------------------
# Every size is bounded before anything is allocated. The per-field maxima keep a run's arrays
# (and its time) finite; the memory estimate below bounds their product. Both are fixed numbers,
# not read from the machine, so a config valid here is valid (and the same experiment) everywhere.
MAX_RUN_SEEDS = 65_536
"""Seeds in one run (one stack), a bound on the seed list itself, checked before it is built. The
memory estimate is what binds first for most configs (about 3,200 seeds of protocol 2017 fit in
4 GiB); a sweep stacks at most --max-stack (default 32) of a grid's seeds per run."""
MAX_STEPS = 1_000_000
"""Training steps (200 x protocol 2017's 5000): the learning-rate and noise schedules are arrays of this length."""
MAX_PRETRAIN_STEPS = 100_000
"""Pretraining steps (100 x protocol 2016's 1000): pretraining draws all its batches at once."""
MAX_BATCH_SIZE = 65_536
MAX_HIDDEN_SIZE = 4096
MAX_MBD_KERNELS = 1024
MAX_MBD_DIMS = 1024
MAX_CURVE_INTERVAL = MAX_STEPS + 1
MEMORY_LIMIT_BYTES = 4 * 2**30
"""A run's estimated peak memory (:func:`estimated_bytes`) must stay under 4 GiB."""
EVAL_SEED_GROUP = 16  # training.EVAL_SEED_GROUP: seeds evaluated together


class ConfigError(UsageError):
    """A config value outside what the suite allows; the message names the value and the rule.

    ``field`` (when one field is at fault) names it, so that the command line can name its option.
    """

    exit_code = 2

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ProtocolRules:
    """What a protocol fixes that is not a free field of the config."""

    activation: str  # D's hidden activation: "tanh" or "relu"
    optimizer: str  # "gd_staircase" or "adam_tf1"
    clip_log: bool  # log(t) := log(max(t, 1e-5)) in the losses
    extra_final_step: bool  # 2017 runs steps 0..num_steps inclusive
    default_batch_size: int
    default_num_steps: int
    default_self_term: str
    default_pretrain_steps: int


RULES = {
    "2016": ProtocolRules("tanh", "gd_staircase", False, False, 12, 1200, "exp-1", 1000),
    "2017": ProtocolRules("relu", "adam_tf1", True, True, 8, 5000, "exp0", 0),
}

LOG_CLIP = 1e-5


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: a protocol, its technique switches, sizes, dtype and the seeds to run.

    Build one with :func:`make_config`, which fills the protocol's defaults; the constructor
    itself requires every field and validates it (``ConfigError`` on a bad value).

    Technique switches (docs/techniques.md), all off by default:
    g_loss / feature_matching / fm_weight: L_G = adversarial term + fm_weight * feature matching;
    instance_noise: std s of N(0, s^2) noise on ``noise_target``, ``noise_schedule`` constant or
    annealed to zero over ``noise_anneal_steps`` (0: the whole run); label_smoothing: D's real
    target alpha in (0, 1] (1: off); historical_averaging: lambda >= 0 of the penalty
    lambda * ||theta - mean of theta over past steps||^2 on each player's loss;
    pretrain_steps: protocol 2016's pretraining of D, for either protocol (0: off).
    """

    protocol: str
    minibatch: bool
    batch_size: int
    num_steps: int
    pretrain_steps: int
    mbd_self_term: str
    mbd_kernels: int = 5
    mbd_dims: int = 3
    hidden_size: int = 4
    dtype: str = "float32"
    curve_interval: int = 10
    g_loss: str = "non_saturating"
    feature_matching: str = "none"
    fm_weight: float = 1.0
    instance_noise: float = 0.0
    noise_target: str = "d_inputs"
    noise_schedule: str = "constant"
    noise_anneal_steps: int = 0
    label_smoothing: float = 1.0
    historical_averaging: float = 0.0
    seeds: tuple[int, ...] = field(default=(0,))

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        for name in ("fm_weight", "instance_noise", "label_smoothing", "historical_averaging"):
            value = getattr(self, name)
            if _is_real(value):  # 1 and 1.0 name the same experiment
                object.__setattr__(self, name, float(value))
        _validate(self)

    # ---- derived by the protocol's fixed rules --------------------------------------------
    @property
    def rules(self) -> ProtocolRules:
        return RULES[self.protocol]

    @property
    def activation(self) -> str:
        return self.rules.activation

    @property
    def optimizer(self) -> str:
        return self.rules.optimizer

    @property
    def clip_log(self) -> bool:
        return self.rules.clip_log

    @property
    def iterations(self) -> int:
        """Training iterations actually run: num_steps + 1 in protocol 2017, num_steps in 2016."""
        return self.num_steps + (1 if self.rules.extra_final_step else 0)

    @property
    def d_feature_size(self) -> int:
        """Width of D's last hidden layer f (the input of its final linear layer)."""
        return 2 * self.hidden_size + (self.mbd_kernels if self.minibatch else 0)

    # ---- identity ---------------------------------------------------------------------------
    @property
    def slug(self) -> str:
        """Readable, stable identity of the experiment without its seeds."""
        mbd = f"mbd-{self.mbd_self_term}-K{self.mbd_kernels}C{self.mbd_dims}" if self.minibatch else "vanilla"
        pre = f"-pre{self.pretrain_steps}" if self.pretrain_steps != self.rules.default_pretrain_steps else ""
        return (f"p{self.protocol}-{mbd}-B{self.batch_size}-T{self.num_steps}-h{self.hidden_size}"
                f"{pre}{self.technique_slug}-{self.dtype}")

    @property
    def technique_slug(self) -> str:
        """The technique switches that differ from the defaults, e.g. ``-sat-fm_paired_l2x1-in0.001``."""
        parts = []
        if self.g_loss != "non_saturating":
            parts.append({"saturating": "sat", "none": "noadv"}[self.g_loss])
        if self.feature_matching != "none":
            parts.append(f"fm_{self.feature_matching}x{self.fm_weight:g}")
        if self.instance_noise:
            sched = "" if self.noise_schedule == "constant" else f"{self.noise_schedule}{self.noise_anneal_steps or ''}"
            parts.append(f"in{self.instance_noise:g}{'z' if self.noise_target == 'z' else ''}{sched}")
        if self.label_smoothing != 1.0:
            parts.append(f"ls{self.label_smoothing:g}")
        if self.historical_averaging:
            parts.append(f"ha{self.historical_averaging:g}")
        return "".join("-" + p for p in parts)

    @property
    def identity(self) -> str:
        """``slug`` plus the seeds, e.g. ``p2017-vanilla-B8-T5000-h4-float32@0-7``."""
        return f"{self.slug}@{format_seeds(self.seeds)}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> ExperimentConfig:
        return dataclasses.replace(self, **changes)

    def with_seeds(self, seeds) -> ExperimentConfig:
        return dataclasses.replace(self, seeds=tuple(seeds))


def make_config(protocol: str = "2017", *, minibatch: bool = False, **overrides) -> ExperimentConfig:
    """The protocol's reference defaults (docs/protocols.md#defaults-and-sizes), with ``overrides`` applied.

    An override given as ``None`` keeps the protocol default.
    """
    protocol = str(protocol)
    if protocol not in RULES:
        raise ConfigError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    rules = RULES[protocol]
    values: dict[str, Any] = dict(  # every value is checked by ExperimentConfig.__post_init__
        protocol=protocol,
        minibatch=bool(minibatch),
        batch_size=rules.default_batch_size,
        num_steps=rules.default_num_steps,
        pretrain_steps=rules.default_pretrain_steps,
        mbd_self_term=rules.default_self_term,
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ExperimentConfig(**values)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


INT_LIMITS = {
    # field: (lowest, highest)
    "num_steps": (1, MAX_STEPS), "hidden_size": (1, MAX_HIDDEN_SIZE), "mbd_kernels": (1, MAX_MBD_KERNELS),
    "mbd_dims": (1, MAX_MBD_DIMS), "curve_interval": (1, MAX_CURVE_INTERVAL),
    "pretrain_steps": (0, MAX_PRETRAIN_STEPS),
}

NEEDS = {
    # a switch's field: how the rule of an inert field says what it needs
    "minibatch": "minibatch discrimination (minibatch true)",
    "feature_matching": "a feature-matching term (feature_matching not 'none')",
    "instance_noise": "instance noise (instance_noise > 0)",
    "noise_schedule": "an annealed noise schedule (noise_schedule 'linear' or 'exponential')",
}


def inert_fields(values: Mapping) -> dict:
    """{field: the switch it needs} for the fields that do not apply to a config with ``values``
    (a mapping of fields; a missing switch counts as its default): the minibatch layer's K, C and
    self term without minibatch discrimination, the feature-matching weight without feature
    matching, the noise target and schedule without instance noise, the annealing length with a
    constant schedule."""
    out: dict[str, str] = {}
    if not values.get("minibatch", False):
        out.update(mbd_kernels="minibatch", mbd_dims="minibatch", mbd_self_term="minibatch")
    if values.get("feature_matching", "none") == "none":
        out["fm_weight"] = "feature_matching"
    if not values.get("instance_noise", 0.0):
        out.update(noise_target="instance_noise", noise_schedule="instance_noise")
    if values.get("noise_schedule", "constant") == "constant":
        out["noise_anneal_steps"] = "noise_schedule"
    return out


def field_default(name: str, protocol: str = "2017"):
    """The default value of a field (the protocol's, for the fields a protocol sets)."""
    rules = RULES.get(str(protocol), RULES["2017"])
    per_protocol = {"batch_size": rules.default_batch_size, "num_steps": rules.default_num_steps,
                    "pretrain_steps": rules.default_pretrain_steps, "mbd_self_term": rules.default_self_term}
    if name in per_protocol:
        return per_protocol[name]
    return next(f.default for f in dataclasses.fields(ExperimentConfig) if f.name == name)


def estimated_bytes(c: ExperimentConfig) -> int:
    """A generous estimate of the peak memory of a run of ``c`` (all its seeds as one stack).

    The terms (S seeds, B batch, h hidden width, D = 2h, K x C minibatch kernels, T iterations,
    L = min(T, 1000) steps per chunk, P pretraining steps, N = 10,000 evaluation points, all in
    8-byte words to cover float64): a chunk's batches and noise (10 L S B), the schedules (3 T),
    the recorded curves (6 S T / curve interval), pretraining's batches (4 P S B), the weights
    with their gradients, optimizer moments and history (8 S (2 D^2 + D K C)), the activations of
    one step (16 S B (D + K C), plus S B^2 K with minibatch discrimination), and the evaluation
    (8 S N, plus 2 min(S, 16) N (D + K C) of activations and min(S, 16) N B K pairs with
    minibatch discrimination).
    """
    s, b, d = len(c.seeds), c.batch_size, 2 * c.hidden_size
    kc = c.mbd_kernels * c.mbd_dims if c.minibatch else 0
    k = c.mbd_kernels if c.minibatch else 0
    t = c.iterations
    chunk = min(t, 1000)
    group = min(s, EVAL_SEED_GROUP)
    words = (10 * chunk * s * b + 3 * t + 6 * s * (t // c.curve_interval + 2) + 4 * c.pretrain_steps * s * b
             + 8 * s * (2 * d * d + d * kc + d) + 16 * s * b * (d + kc) + s * b * b * k
             + 8 * s * EVAL_SAMPLES + 2 * group * EVAL_SAMPLES * (d + kc) + group * EVAL_SAMPLES * b * k)
    return 8 * words


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _validate(c: ExperimentConfig) -> None:
    def need(ok: bool, msg: str, field_name: str | None = None) -> None:
        if not ok:
            raise ConfigError(msg, field_name)

    need(c.protocol in PROTOCOLS, f"unknown protocol {c.protocol!r}; allowed: {', '.join(PROTOCOLS)}", "protocol")
    need(isinstance(c.minibatch, bool), f"minibatch must be true or false, got {c.minibatch!r}", "minibatch")
    need(c.dtype in DTYPES, f"unknown dtype {c.dtype!r}; allowed: {', '.join(DTYPES)}", "dtype")
    need(c.mbd_self_term in SELF_TERMS,
         f"unknown minibatch self term {c.mbd_self_term!r}; allowed: {', '.join(SELF_TERMS)}", "mbd_self_term")
    for name, (low, high) in INT_LIMITS.items():
        v = getattr(c, name)
        need(_is_int(v) and v >= low, f"{name} must be an integer >= {low}, got {v!r}", name)
        need(v <= high, f"{name} must be at most {high}, got {v!r}", name)
    low_b = 2 if c.minibatch else 1
    need(_is_int(c.batch_size) and c.batch_size >= low_b,
         f"batch size must be an integer >= {low_b}"
         f"{' with minibatch discrimination' if c.minibatch else ''}, got {c.batch_size!r}", "batch_size")
    need(c.batch_size <= MAX_BATCH_SIZE, f"batch size must be at most {MAX_BATCH_SIZE}, got {c.batch_size!r}",
         "batch_size")
    need(c.g_loss in G_LOSSES, f"unknown generator loss {c.g_loss!r}; allowed: {', '.join(G_LOSSES)}", "g_loss")
    need(c.feature_matching in FEATURE_MATCHING,
         f"unknown feature matching {c.feature_matching!r}; allowed: {', '.join(FEATURE_MATCHING)}",
         "feature_matching")
    need(c.g_loss != "none" or c.feature_matching != "none",
         "G needs a loss: g_loss 'none' requires a feature-matching term")
    need(_is_real(c.fm_weight) and c.fm_weight > 0,
         f"feature-matching weight must be a number > 0, got {c.fm_weight!r}", "fm_weight")
    need(_is_real(c.instance_noise) and c.instance_noise >= 0,
         f"instance noise std must be a number >= 0, got {c.instance_noise!r}", "instance_noise")
    need(c.noise_target in NOISE_TARGETS,
         f"unknown instance-noise target {c.noise_target!r}; allowed: {', '.join(NOISE_TARGETS)}", "noise_target")
    need(c.noise_schedule in NOISE_SCHEDULES,
         f"unknown noise schedule {c.noise_schedule!r}; allowed: {', '.join(NOISE_SCHEDULES)}", "noise_schedule")
    need(_is_int(c.noise_anneal_steps) and c.noise_anneal_steps >= 0,
         f"noise_anneal_steps must be an integer >= 0, got {c.noise_anneal_steps!r}", "noise_anneal_steps")
    need(c.noise_anneal_steps <= c.iterations,
         f"noise annealing over {c.noise_anneal_steps} steps is longer than the run ({c.iterations} steps)",
         "noise_anneal_steps")
    need(c.noise_schedule != "constant" or c.noise_anneal_steps == 0,
         "noise_anneal_steps applies to a linear or exponential noise schedule, not to 'constant'",
         "noise_anneal_steps")
    need(c.noise_schedule == "constant" or c.instance_noise > 0,
         f"an annealed noise schedule ({c.noise_schedule!r}) needs instance noise > 0", "noise_schedule")
    need(_is_real(c.label_smoothing) and 0 < c.label_smoothing <= 1,
         f"label smoothing alpha must lie in (0, 1], got {c.label_smoothing!r}", "label_smoothing")
    need(_is_real(c.historical_averaging) and c.historical_averaging >= 0,
         f"historical averaging weight must be a number >= 0, got {c.historical_averaging!r}",
         "historical_averaging")
    # A field that does not apply keeps its default: a config never stores an inert value.
    values = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
    for name, switch in inert_fields(values).items():
        default = field_default(name, c.protocol)
        need(values[name] == default,
             f"{name} {values[name]!r} applies only with {NEEDS[switch]}; without it, leave {name} at its "
             f"default {default!r}", name)
    need(len(c.seeds) >= 1, "at least one seed is required", "seeds")
    need(len(c.seeds) <= MAX_RUN_SEEDS, f"a run stacks at most {MAX_RUN_SEEDS} seeds, got {len(c.seeds)}", "seeds")
    need(all(0 <= s <= MAX_SEED for s in c.seeds), f"seeds must lie in 0..{MAX_SEED}, got {list(c.seeds)}", "seeds")
    need(len(set(c.seeds)) == len(c.seeds), f"seeds must be distinct, got {list(c.seeds)}", "seeds")
    size = estimated_bytes(c)
    need(size <= MEMORY_LIMIT_BYTES,
         f"a run of {len(c.seeds)} seed(s) x batch size {c.batch_size} x hidden size {c.hidden_size}"
         f"{f' x {c.mbd_kernels}x{c.mbd_dims} minibatch kernels' if c.minibatch else ''} x {c.iterations} steps "
         f"(pretraining {c.pretrain_steps}) needs about {_gib(size)} by the suite's estimate, over the limit of "
         f"{MEMORY_LIMIT_BYTES // 2**30} GiB per run; run fewer seeds at once or smaller sizes")


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parse ``"0-7"``, ``"3"`` or ``"0-3,10,12-13"`` into a tuple of distinct seeds, in order."""
    seeds: list[int] = []
    count = 0
    parts = str(text).split(",")
    for part in parts:
        m = _RANGE.match(part)
        if not m:
            raise ConfigError(f"malformed seed range {text!r}; use e.g. 0-7, 3 or 0-3,10", "seeds")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ConfigError(f"malformed seed range {part.strip()!r} in {text!r}: end before start", "seeds")
        if hi > MAX_SEED:
            raise ConfigError(f"seed {hi} in {text!r} is out of range 0..{MAX_SEED}", "seeds")
        count += hi - lo + 1
        if count > MAX_RUN_SEEDS:  # counted before any list is built
            raise ConfigError(f"seed range {text!r} names at least {count} seeds;"
                              f" a run stacks at most {MAX_RUN_SEEDS}", "seeds")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seed range {text!r} repeats a seed", "seeds")
    return tuple(seeds)


def format_seeds(seeds) -> str:
    """Inverse of :func:`parse_seeds`: consecutive runs are written as ``a-b``."""
    seeds = list(seeds)
    out, i = [], 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        out.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(out)
