"""The experiment config: one immutable value that names an experiment exactly.

Everything a run depends on is a field here (or derived from the protocol by a fixed rule),
so that two configs that compare equal describe the same experiment in either framework.
Defaults follow PROTOCOLS.md section 7; :func:`make_config` fills them in per protocol.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

PROTOCOLS = ("2016", "2017")
DTYPES = ("float32", "float64")
SELF_TERMS = ("exp-1", "exp0", "none")
"""Minibatch-discrimination self term: the diagonal i == j contributes exp(-1) (s = 1,
protocol 2016), exp(0) = 1 (s = 0, protocol 2017) or nothing (s = inf, Salimans' code)."""

NOISE_RANGE = 8.0
"""R: generator noise is stratified on [-R, R]; its continuous counterpart is U(-R, R)."""

EVAL_SAMPLES = 10_000
"""Generated samples per evaluation (both the linspace grid and the fresh uniform draws)."""

MAX_SEED = 2**32 - 1


class ConfigError(ValueError):
    """A config value outside what the suite allows; the message names the value and the rule."""


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
    seeds: tuple[int, ...] = field(default=(0,))

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
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
                f"{pre}-{self.dtype}")

    @property
    def identity(self) -> str:
        """``slug`` plus the seeds, e.g. ``p2017-vanilla-B8-T5000-h4-float32@0-7``."""
        return f"{self.slug}@{format_seeds(self.seeds)}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)

    def with_seeds(self, seeds) -> "ExperimentConfig":
        return dataclasses.replace(self, seeds=tuple(seeds))


def make_config(protocol: str = "2017", *, minibatch: bool = False, **overrides) -> ExperimentConfig:
    """The protocol's reference defaults (PROTOCOLS.md section 7), with ``overrides`` applied.

    An override given as ``None`` keeps the protocol default.
    """
    protocol = str(protocol)
    if protocol not in RULES:
        raise ConfigError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    rules = RULES[protocol]
    values = dict(
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


def _validate(c: ExperimentConfig) -> None:
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ConfigError(msg)

    need(c.protocol in PROTOCOLS, f"unknown protocol {c.protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    need(isinstance(c.minibatch, bool), f"minibatch must be true or false, got {c.minibatch!r}")
    need(c.dtype in DTYPES, f"unknown dtype {c.dtype!r}; allowed: {', '.join(DTYPES)}")
    need(c.mbd_self_term in SELF_TERMS,
         f"unknown minibatch self term {c.mbd_self_term!r}; allowed: {', '.join(SELF_TERMS)}")
    for name, low in (("num_steps", 1), ("hidden_size", 1), ("mbd_kernels", 1), ("mbd_dims", 1),
                      ("curve_interval", 1), ("pretrain_steps", 0)):
        v = getattr(c, name)
        need(_is_int(v) and v >= low, f"{name} must be an integer >= {low}, got {v!r}")
    low_b = 2 if c.minibatch else 1
    need(_is_int(c.batch_size) and c.batch_size >= low_b,
         f"batch size must be an integer >= {low_b}"
         f"{' with minibatch discrimination' if c.minibatch else ''}, got {c.batch_size!r}")
    need(len(c.seeds) >= 1, "at least one seed is required")
    need(all(0 <= s <= MAX_SEED for s in c.seeds), f"seeds must lie in 0..{MAX_SEED}, got {list(c.seeds)}")
    need(len(set(c.seeds)) == len(c.seeds), f"seeds must be distinct, got {list(c.seeds)}")


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parse ``"0-7"``, ``"3"`` or ``"0-3,10,12-13"`` into a tuple of distinct seeds, in order."""
    seeds: list[int] = []
    parts = str(text).split(",")
    for part in parts:
        m = _RANGE.match(part)
        if not m:
            raise ConfigError(f"malformed seed range {text!r}; use e.g. 0-7, 3 or 0-3,10")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ConfigError(f"malformed seed range {part.strip()!r} in {text!r}: end before start")
        if hi > MAX_SEED:
            raise ConfigError(f"seed {hi} in {text!r} is out of range 0..{MAX_SEED}")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seed range {text!r} repeats a seed")
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
