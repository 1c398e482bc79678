"""The twin contract: both twins define exactly the public functions of ``interface.Twin``, in its
order, with its parameters; the framework-neutral parts (noise routing, curve layout) live once.

Public functions of a twin: module-level functions whose names do not start with ``_``, defined in
that module (imported helpers do not count). Adding, removing, renaming or reordering one in
either twin, or changing its parameters, fails here. The source checks read the twins' files
without importing a framework; the import checks use ``ganrepro.impls.get_backend`` and skip a
framework that is not installed (or fail, under GANREPRO_REQUIRE_FRAMEWORKS=1).
"""
from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import numpy as np
import pytest

import ganrepro.impls
from ganrepro.config import make_config
from ganrepro.impls import FRAMEWORKS, get_backend
from ganrepro.impls.interface import CURVES, Twin, in_curve_order
from ganrepro.streams import NoiseRouting, noise_routing, training_chunks, with_noise
from ganrepro.weights import initial_weights

IMPLS = Path(ganrepro.impls.__file__).resolve().parent
TWIN_FILES = {name: IMPLS / f"{module.rsplit('.', 1)[-1]}.py" for name, (_, module) in FRAMEWORKS.items()}


# ---- the contract as lists of (name, parameters) --------------------------------------------
def protocol_members() -> list[tuple[str, tuple]]:
    """Twin's functions in definition order, each with its parameters as (name, kind, default)
    (``self``, which stands for the module, left out)."""
    out = []
    for name, value in vars(Twin).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        params = list(inspect.signature(value).parameters.values())[1:]
        out.append((name, tuple((p.name, p.kind.name, _default(p.default)) for p in params)))
    return out


def _default(value) -> str | None:
    return None if value is inspect.Parameter.empty else repr(value)


def module_members(module: types.ModuleType) -> list[tuple[str, tuple]]:
    """A module's public functions in source order, with their parameters as in protocol_members."""
    found = [v for k, v in vars(module).items()
             if not k.startswith("_") and inspect.isfunction(v) and v.__module__ == module.__name__]
    found.sort(key=lambda fn: inspect.unwrap(fn).__code__.co_firstlineno)  # decorated: where the body is
    return [(fn.__name__, tuple((p.name, p.kind.name, _default(p.default))
                                for p in inspect.signature(fn).parameters.values())) for fn in found]


def source_members(path: Path) -> list[tuple[str, tuple]]:
    """The same, read from a module's source without importing it."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            a = node.args
            kinds = ([(x, "POSITIONAL_ONLY") for x in a.posonlyargs] + [(x, "POSITIONAL_OR_KEYWORD") for x in a.args]
                     + ([(a.vararg, "VAR_POSITIONAL")] if a.vararg else [])
                     + [(x, "KEYWORD_ONLY") for x in a.kwonlyargs] + ([(a.kwarg, "VAR_KEYWORD")] if a.kwarg else []))
            positional = [*a.posonlyargs, *a.args]
            with_default = positional[len(positional) - len(a.defaults):]
            defaults = dict(zip([x.arg for x in with_default], a.defaults, strict=True))
            defaults.update({x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None})
            out.append((node.name, tuple(
                (x.arg, kind, repr(ast.literal_eval(defaults[x.arg])) if x.arg in defaults else None)
                for x, kind in kinds)))
    return out


def contract_violations(members: list[tuple[str, tuple]]) -> list[str]:
    """What differs between a twin's public functions and Twin's: missing, extra, order, parameters."""
    expected = protocol_members()
    want, got = dict(expected), dict(members)
    problems = [f"missing: {name}" for name in want if name not in got]
    problems += [f"not in interface.Twin: {name}" for name in got if name not in want]
    common = [name for name, _ in members if name in want]
    if common != [name for name, _ in expected if name in got]:
        problems.append(f"order differs from interface.Twin: {common}")
    problems += [f"parameters of {name}: {got[name]} != {want[name]}"
                 for name in common if got[name] != want[name]]
    return problems


# ---- the protocol itself --------------------------------------------------------------------
def test_the_protocol_lists_every_function_once_with_a_one_line_docstring():
    members = protocol_members()
    names = [name for name, _ in members]
    assert len(names) == len(set(names)) and {"pretrain", "train_chunk", "penalty_and_gradient"} <= set(names)
    for name in names:
        doc = inspect.getdoc(getattr(Twin, name))
        assert doc and "\n" not in doc.strip(), f"Twin.{name} needs a one-line docstring"
    assert "NAME" in Twin.__annotations__


# ---- the checker catches what it is for (no framework needed) -------------------------------
def stub_module(members: list[tuple[str, tuple]], name: str = "stub_twin") -> types.ModuleType:
    """A module defining one empty function per (name, parameters), in the given order."""
    module = types.ModuleType(name)
    lines = []
    for fn, params in members:
        rendered = []
        for p, kind, default in params:
            assert kind == "POSITIONAL_OR_KEYWORD"  # all the protocol uses
            rendered.append(p if default is None else f"{p}={default}")
        lines.append(f"def {fn}({', '.join(rendered)}):\n    pass\n")
    exec(compile("\n".join(lines), name, "exec"), module.__dict__)
    return module


def test_the_checker_accepts_the_protocol_and_catches_each_kind_of_drift():
    members = protocol_members()
    assert contract_violations(module_members(stub_module(members))) == []
    added = stub_module([*members[:3], ("extra", ()), *members[3:]])
    assert contract_violations(module_members(added)) == ["not in interface.Twin: extra"]
    removed = module_members(stub_module(members[:5] + members[6:]))
    assert contract_violations(removed) == [f"missing: {members[5][0]}"]
    swapped = module_members(stub_module([members[1], members[0], *members[2:]]))
    assert [p.split(":")[0] for p in contract_violations(swapped)] == ["order differs from interface.Twin"]
    name, params = members[4]
    renamed = module_members(stub_module([*members[:4], (name, (("y", *params[0][1:]), *params[1:])), *members[5:]]))
    assert [p.split(":")[0] for p in contract_violations(renamed)] == [f"parameters of {name}"]
    helper = stub_module([*members, ("_private_helper", ())])
    assert contract_violations(module_members(helper)) == []


# ---- the twins, read from source (no framework needed) --------------------------------------
@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_twin_source_defines_exactly_the_protocol_functions_in_order(framework):
    assert contract_violations(source_members(TWIN_FILES[framework])) == []


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_twins_hold_no_routing_or_curve_layout_of_their_own(framework):
    """Noise routing is ``streams.noise_routing``'s, the curve layout ``interface.CURVES``'s."""
    source = TWIN_FILES[framework].read_text(encoding="utf-8")
    for fragment in ("noise_target", "config.instance_noise", '"loss/D", "loss/G"'):
        assert fragment not in source, f"{TWIN_FILES[framework].name} decides {fragment!r} itself"
    assert "len(CURVES)" in source and "in_curve_order(" in source


# ---- the twins, imported ---------------------------------------------------------------------
def test_twin_module_satisfies_the_protocol(framework):
    twin = get_backend(framework)
    assert isinstance(twin, Twin)
    assert twin.NAME == framework
    for name, _ in protocol_members():
        assert callable(getattr(twin, name)), name
    assert contract_violations(module_members(twin)) == []


def test_twin_curves_follow_the_curve_layout(framework):
    twin = get_backend(framework)
    config = make_config("2017", num_steps=2, seeds=(0, 1), instance_noise=0.1)
    init = initial_weights(config)
    chunk = next(training_chunks(config))
    _, curves = twin.train_chunk(config, twin.init_state(config, init["G"], init["D"]), chunk)
    assert curves.shape == (chunk.x.shape[0], 2, len(CURVES))
    assert np.all(np.isfinite(curves[:chunk.n_valid]))


# ---- the framework-neutral pieces -----------------------------------------------------------
@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, NoiseRouting(x_d=False, z_d=False, fake_d=False, fake_g=False, x_g=False)),
    ({"instance_noise": 0.1}, NoiseRouting(x_d=True, z_d=False, fake_d=True, fake_g=True, x_g=True)),
    ({"instance_noise": 0.1, "noise_target": "z"}, NoiseRouting(x_d=True, z_d=True, fake_d=False, fake_g=False,
                                                                x_g=False)),
])
def test_noise_routing(overrides, expected):
    assert noise_routing(make_config("2017", **overrides)) == expected


def test_noise_routing_matches_the_streams():
    """A site the routing leaves out has no noise drawn for it: G's update under target z."""
    c = make_config("2017", num_steps=20, instance_noise=0.5, noise_target="z")
    chunk = next(training_chunks(c))
    assert not noise_routing(c).fake_g and not chunk.noise_fake_g.any()
    assert noise_routing(c).z_d and chunk.noise_fake_d[:chunk.n_valid].any()


def test_with_noise_adds_only_where_routed():
    a, n = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    assert with_noise(a, n, False) is a
    assert np.array_equal(with_noise(a, n, True), [1.5, 1.5])


def test_in_curve_order_lays_out_every_curve_once():
    d_part = {"loss/D": 1, "loss/real": 3, "loss/fake": 4}
    g_part = {"loss/G": 2, "norms/G": 5, "norms/D": 6}
    assert in_curve_order(g_part, d_part) == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError):
        in_curve_order(d_part)
    with pytest.raises(ValueError):
        in_curve_order(d_part, g_part, {"loss/D": 0})
