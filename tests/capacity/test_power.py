"""Which power model each node gets (flags, NFD labels, instance type, CCF average) and what it is worth."""

from __future__ import annotations

import numpy as np
import pytest

from zerowatt.capacity.power import instance_family, node_models
from zerowatt.energy.catalog import coefficients_table


@pytest.mark.parametrize(
    ("itype", "expected"),
    [
        ("m6i.2xlarge", ("aws", "Ice Lake")),
        ("c7g.large", ("aws", "Graviton3")),
        ("n2d-standard-8", ("gcp", "EPYC 2nd Gen")),
        ("Standard_D4as_v5", ("azure", "EPYC 3rd Gen")),
        ("Standard_D8s_v5", ("azure", "Cascade Lake")),
        ("e2-standard-4", None),  # mixed hosts: CCF's average
        ("bare-metal-42", None),
    ],
)
def test_instance_families(itype: str, expected: tuple[str, str] | None) -> None:
    assert instance_family(itype) == expected


def test_node_models_in_order_of_precedence() -> None:
    labels = [
        {"node.kubernetes.io/instance-type": "m6i.2xlarge"},
        {"feature.node.kubernetes.io/cpu-model.vendor_id": "GenuineIntel",
         "feature.node.kubernetes.io/cpu-model.family": "6", "feature.node.kubernetes.io/cpu-model.id": "106"},
        {"node.kubernetes.io/instance-type": "mystery.large"},
    ]  # fmt: skip
    cpus = np.array([8, 4, 2])
    m = node_models(labels, cpus)
    assert m.basis == ["ccf-coefficients", "ccf-coefficients", "generic-default"]
    ice = next(c for c in coefficients_table() if c.architecture == "Ice Lake" and c.provider == "aws")
    assert m.idle[0] == pytest.approx(ice.min_watts_per_vcpu * 8) and m.max[0] == pytest.approx(
        ice.max_watts_per_vcpu * 8
    )
    assert m.idle[1] == pytest.approx(ice.min_watts_per_vcpu * 4)  # NFD's family 6 model 0x6A is Ice Lake
    assert m.idle[2] == pytest.approx(0.74 * 2) and m.max[2] == pytest.approx(3.5 * 2)  # CCF's AWS average
    fixed = node_models(labels, cpus, (90.0, 400.0))
    assert fixed.basis == ["configured"] * 3 and fixed.idle.tolist() == [90.0] * 3
    named = node_models(labels, cpus, node_cpu="Ampere Altra Max 64-Bit Multi-Core Processor M128-30")
    assert named.basis == ["specpower"] * 3
    # SPECpower's 128-thread system (78.2 W idle, 150 W at 100 %) apportioned to each node's threads
    assert named.idle[0] == pytest.approx(78.2 * 8 / 128) and named.max[2] == pytest.approx(150.0 * 2 / 128)
    assert fixed.watts(np.array([0.0, 0.5, 2.0])).tolist() == [90.0, 245.0, 400.0]
