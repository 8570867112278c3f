"""The policy registry: one place per policy, options derived from its parameters, and the online side
deciding exactly as the batch side while staying free of NumPy."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerowatt.errors import UsageError
from zerowatt.scaling.policies import POLICIES, POLICY_NAMES, make_autoscaler, parse_policy, policy
from zerowatt.scaling.policies.energy import EnergyAware
from zerowatt.scaling.policies.hybrid import (
    HybridParams,
    IdleHistogram,
    ar1_forecast,
    histogram_windows,
    is_out_of_range,
)
from zerowatt.scaling.policies.kpa import KpaDecider, KpaParams
from zerowatt.scaling.sim.driver import SimulationConfig
from zerowatt.scaling.sim.hybrid_batch import hybrid_windows, out_of_range
from zerowatt.scaling.sim.kpa_batch import KpaState, decide

HEAVY = ("numpy", "prometheus_client", "matplotlib", "pyarrow", "httpx")


def test_the_online_side_imports_no_heavy_module() -> None:
    """What a ``zerowatt up`` worker imports to scale: every policy built and stepped, none of the heavy
    modules loaded (the online autoscaler used to run on NumPy arrays)."""
    code = (
        "import sys\n"
        "import zerowatt.scaling\n"
        "from zerowatt.scaling import Observation, parse_policy\n"
        "for name in zerowatt.scaling.POLICY_NAMES:\n"
        "    a = parse_policy(name, ['compression=60']).autoscaler(cold_start=0.0003)\n"
        "    for t, load in ((0.0, 1), (1.0, 0), (200.0, 0), (400.0, 2)):\n"
        "        a.decide(Observation(t, in_flight=load, ready=1))\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""


def test_each_policy_is_registered_once_with_its_parts() -> None:
    assert POLICY_NAMES == ("kpa", "keepalive", "hybrid", "energy")
    config = SimulationConfig()
    for name, spec in POLICIES.items():
        assert spec.name == name
        assert isinstance(config.params(name), spec.params)  # the simulator's parameters are the same class
        assert callable(spec.simulate_batch)
        assert spec.batch_module.endswith(f".{name}_batch")
    with pytest.raises(UsageError, match="warm-forever"):
        policy("warm-forever")


def test_options_are_the_parameter_fields() -> None:
    # The keys zerowatt up has always taken are all still there (compression and max_instances: every policy).
    before = {
        "kpa": {"target", "target_utilization", "stable_window", "panic_window_percentage",
                "panic_threshold_percentage", "max_scale_up_rate", "max_scale_down_rate",
                "scale_to_zero_grace_period", "tick", "max_scale"},
        "keepalive": {"keep_alive", "capacity"},
        "hybrid": {"bin_width", "range", "margin", "cv_threshold", "fallback_keep_alive", "capacity"},
        "energy": {"cold_start", "memory_gb", "start_joules", "latency_watts", "capacity"},
    }  # fmt: skip
    for name, keys in before.items():
        options = POLICIES[name].options
        assert keys <= set(options), name
        fields = {f.name for f in dataclasses.fields(POLICIES[name].params)}
        assert {o.field for o in options.values()} <= fields
    assert POLICIES["kpa"].options["target"].field == "container_concurrency_target"
    assert POLICIES["energy"].options["cold_start"].field == "start_latency"
    # Every option is accepted at a valid value, and lands in its field with the field's type.
    for name, spec in POLICIES.items():
        for key, opt in spec.options.items():
            default = getattr(spec.params(), opt.field)
            value = 1 if default is None else default
            config = parse_policy(name, [f"{key}={value}"])
            got = getattr(config.params, opt.field)
            assert got == value and isinstance(got, int if opt.integer else float), (name, key)


@pytest.mark.parametrize(
    ("name", "option", "named"),
    [("kpa", "max_scale=1.5", "max_scale"), ("kpa", "target=-1", "target"), ("energy", "capacity=0", "capacity"),
     ("keepalive", "max_instances=0", "max_instances"), ("hybrid", "head_percentile=99.5", "head_percentile")],
)  # fmt: skip
def test_option_errors_name_the_key(name: str, option: str, named: str) -> None:
    with pytest.raises(UsageError, match=named):
        parse_policy(name, [option])


def test_make_autoscaler_checks_the_parameters_type() -> None:
    with pytest.raises(TypeError, match="KpaParams"):
        make_autoscaler("kpa", cold_start=1.0, kpa=HybridParams())


kpa_steps = st.lists(
    st.tuples(st.integers(0, 50), st.floats(0, 5000), st.floats(0, 5000), st.booleans(), st.floats(0.5, 40.0)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(seq=kpa_steps, max_scale=st.sampled_from([0, 3, 20]))
def test_online_kpa_decider_decides_as_the_vectorised_one(
    seq: list[tuple[int, float, float, bool, float]], max_scale: int
) -> None:
    params = KpaParams(max_scale=max_scale)
    state, one = KpaState.fresh(1), KpaDecider(params)
    now = 0.0
    for ready, stable, panic, data, dt in seq:
        now += dt
        vec = decide(
            params,
            state,
            now,
            np.array([ready], dtype=np.int64),
            np.array([stable]),
            np.array([panic]),
            np.array([data]),
        )
        assert one.decide(now, ready, stable, panic, data) == int(vec[0])
        assert (one.panic_since, one.max_panic_pods, one.zero_since) == (
            state.panic_since[0],
            state.max_panic_pods[0],
            state.zero_since[0],
        )


@settings(max_examples=200, deadline=None)
@given(
    idle=st.lists(st.floats(0.0, 6 * 3600.0), max_size=40),
    params=st.sampled_from([HybridParams(), HybridParams(range=3600.0, margin=0.2), HybridParams(cv_threshold=0.5)]),
)
def test_online_histogram_windows_match_the_vectorised_ones(idle: list[float], params: HybridParams) -> None:
    hist = IdleHistogram(params)
    for t in idle:
        hist.add(t)
    counts, oob = hist.counts, hist.out_of_range
    arr, oob_arr = np.array([counts], dtype=np.int64), np.array([oob], dtype=np.int64)
    assert is_out_of_range(params, counts, oob) == bool(out_of_range(params, arr, oob_arr)[0])
    forecast = 1000.0 * (1 + len(idle))
    one = histogram_windows(params, counts, oob, forecast)
    p, k, rep = hybrid_windows(params, arr, oob_arr, np.array([forecast]))
    assert one == (float(p[0]), float(k[0]), bool(rep[0]))
    learnt = np.array([ar1_forecast(hist.recent)])  # what the online histogram forecasts from
    assert hist.windows() == tuple(float(v[0]) for v in hybrid_windows(params, arr, oob_arr, learnt)[:2])


@pytest.mark.parametrize("start", [0.0, 0.0003, 1.0])
def test_energy_break_even_is_one_formula_online_and_batch(start: float) -> None:
    pol = EnergyAware(start, start_joules=None, latency_watts=3.0)
    mem = np.array([0.128, 1.0, 0.128, 4.0])
    _, k = pol.windows(mem)
    assert k.tolist() == [pol.keep_alive(m) for m in mem.tolist()]
    assert math.isinf(EnergyAware(1.0, dataclasses.replace(pol.energy, cpu_min_watts_per_vcpu=0.0)).keep_alive(0.0))
