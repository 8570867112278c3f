"""Who is this CPU? Parse ``/proc/cpuinfo`` text and name the CPU two ways: a normalised model key (to
match SPECpower results) and a micro-architecture (to pick Cloud Carbon Footprint coefficients).

Pure functions on text: the adapter that reads ``/proc/cpuinfo`` passes its content in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRADEMARKS = re.compile(r"\((?:r|tm|c)\)|[®™©]")
_BRACKETS = re.compile(r"\[.*?\]|\(.*?\)")
_N_CORE = re.compile(r"\b\d+-core\b")
_GHZ = re.compile(r"^[\d.]+ghz$")
_NOISE = frozenset({"cpu", "processor", "intel", "amd", "0", "ampere"})
_SUFFIX = re.compile(r"(?<=\d)[a-z+]+$")


@dataclass(frozen=True)
class CpuIdentity:
    """What ``/proc/cpuinfo`` says about the node's CPUs (first processor; nodes are homogeneous)."""

    model_name: str
    vendor_id: str = ""
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    cpu_part: str = ""
    logical_cpus: int = 1


def _int(value: str) -> int | None:
    try:
        return int(value, 0)
    except ValueError:
        return None


def parse_cpuinfo(text: str) -> CpuIdentity:
    """Read the first processor's identity and count the ``processor`` entries (the logical CPUs)."""
    first: dict[str, str] = {}
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "processor":
            processors += 1
        if key not in first:
            first[key] = value
    model_name = first.get("model name") or first.get("cpu model") or first.get("hardware") or "unknown CPU"
    return CpuIdentity(
        model_name=model_name,
        vendor_id=first.get("vendor_id", first.get("cpu implementer", "")),
        family=_int(first["cpu family"]) if "cpu family" in first else None,
        model=_int(first["model"]) if "model" in first else None,
        stepping=_int(first["stepping"]) if "stepping" in first else None,
        cpu_part=first.get("cpu part", "").lower(),
        logical_cpus=max(1, processors),
    )


def cpu_key(description: str) -> str:
    """A CPU model string reduced to what identifies the part: ``"Intel(R) Xeon(R) Platinum 8180 CPU @
    2.50GHz"`` and SPECpower's ``"Intel Xeon Platinum 8180"`` both become ``"xeon platinum 8180"``.

    Drops trademarks, vendor names, bracketed SKU notes, ``@ frequency``, ``N-Core``, "CPU"/"Processor"
    and the stray ``0`` some Xeon E5 strings carry; keeps generation markers such as ``v2``.
    """
    s = _TRADEMARKS.sub(" ", description.lower())
    s = s.split("@", 1)[0]
    s = _BRACKETS.sub(" ", s)
    s = _N_CORE.sub(" ", s)
    s = re.sub(r"[,;/]", " ", s)
    tokens = [t for t in s.split() if t not in _NOISE and not _GHZ.match(t)]
    return " ".join(tokens)


def family_key(key: str) -> str:
    """The model key without the letter suffix of its part number (``epyc 9654p`` → ``epyc 9654``,
    ``xeon platinum 8490h`` → ``xeon platinum 8490``): the same silicon in another SKU variant."""
    return " ".join(_SUFFIX.sub("", t) if any(c.isdigit() for c in t) else t for t in key.split())


# (family, first model, last model) → micro-architecture name as Cloud Carbon Footprint spells it.
# Sources: AMD and Intel CPUID family/model tables (AMD PPRs; Intel SDM vol. 4, table 2-1).
_AMD = (
    (0x17, 0x00, 0x2F, "EPYC 1st Gen"),  # Zen / Zen+ (Naples)
    (0x17, 0x30, 0x3F, "EPYC 2nd Gen"),  # Zen 2 (Rome)
    (0x19, 0x00, 0x0F, "EPYC 3rd Gen"),  # Zen 3 (Milan)
    (0x19, 0x10, 0x1F, "EPYC 4th Gen"),  # Zen 4 (Genoa)
    (0x19, 0xA0, 0xAF, "EPYC 4th Gen"),  # Zen 4c (Bergamo, Siena)
    (0x1A, 0x00, 0x1F, "EPYC 5th Gen"),  # Zen 5 / 5c (Turin)
)
_INTEL_MODELS = {
    0x2A: "Sandy Bridge",
    0x2D: "Sandy Bridge",
    0x3A: "Ivy Bridge",
    0x3E: "Ivy Bridge",
    0x3C: "Haswell",
    0x3F: "Haswell",
    0x45: "Haswell",
    0x46: "Haswell",
    0x3D: "Broadwell",
    0x47: "Broadwell",
    0x4F: "Broadwell",
    0x56: "Broadwell",
    0x4E: "Skylake",
    0x5E: "Skylake",
    0x8E: "Coffee Lake",
    0x9E: "Coffee Lake",
    0x6A: "Ice Lake",
    0x6C: "Ice Lake",
    0x8F: "Sapphire Rapids",
    0xCF: "Emerald Rapids",
    0xAD: "Granite Rapids",
    0xAE: "Granite Rapids",
}
# Arm Neoverse parts (``CPU part`` in /proc/cpuinfo) → the AWS Graviton generation built on them.
_ARM_PARTS = {"0xd0c": "Graviton2", "0xd40": "Graviton3", "0xd4f": "Graviton4"}


def microarchitecture(cpu: CpuIdentity) -> str | None:
    """The CCF micro-architecture of ``cpu`` from its CPUID family/model (or Arm part), or None."""
    if cpu.cpu_part in _ARM_PARTS:
        return _ARM_PARTS[cpu.cpu_part]
    if cpu.family is None or cpu.model is None:
        return None
    if cpu.vendor_id == "AuthenticAMD":
        for family, low, high, name in _AMD:
            if cpu.family == family and low <= cpu.model <= high:
                return name
        return None
    if cpu.vendor_id == "GenuineIntel" and cpu.family == 6:
        if cpu.model == 0x55:  # Skylake-SP; steppings 5-7 are Cascade Lake, 10-11 Cooper Lake (Cascade Lake core)
            return "Cascade Lake" if (cpu.stepping or 0) >= 5 else "Skylake"
        return _INTEL_MODELS.get(cpu.model)
    return None
