"""Schedule grammar cost: what one downscaler pass pays to judge 10,000 workloads' schedules.

``python -m benchmarks schedule [--workloads N]``. Measures, in CPU time of this process:
- ``matches`` per spec kind, and ``parse_schedule`` with a warm cache (the steady state of a controller);
- a pass: N workloads, each with an uptime and a downtime annotation drawn from 200 distinct specs, parsed
  (cached) and judged at one instant;
- the same pass with the cache cleared before every parse (what re-parsing each annotation would cost),
  reported as a ratio measured in the same run; the machine is shared and noisy, so the ratio is the claim.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.machine import describe
from zerowatt.schedule import parse_schedule

KINDS = {
    "always": "always",
    "recurring": "Mon-Fri 07:30-20:30 Europe/Berlin",
    "list of two": "Sat-Sun 00:00-24:00 CET, Fri-Fri 20:00-24:00 CET",
    "across midnight": "Mon-Fri 20:00-08:00 America/New_York",
    "absolute": "2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00",
    "holidays": "holidays DE-BY Europe/Berlin",
}
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"]
AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def cpu_per_call(func: Callable[[], object], budget: float = 0.3) -> float:
    """CPU seconds per call of ``func``, looping for about ``budget`` seconds."""
    calls, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < budget:
        for _ in range(200):
            func()
        calls += 200
    return elapsed / calls


def specs(count: int) -> list[str]:
    out = []
    for i in range(count):
        zone = ZONES[i % len(ZONES)]
        start, end = 6 + i % 4, 18 + i % 5
        out.append(f"Mon-Fri {start:02d}:{(i * 7) % 60:02d}-{end:02d}:00 {zone}")
    return out


def one_pass(annotations: list[tuple[str, str]], clear: bool) -> float:
    start = time.process_time()
    for uptime, downtime in annotations:
        if clear:
            parse_schedule.cache_clear()
        up = parse_schedule(uptime, default_timezone="UTC").matches(AT)
        if clear:
            parse_schedule.cache_clear()
        down = parse_schedule(downtime, default_timezone="UTC").matches(AT)
        _ = (not up) or down
    return time.process_time() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks schedule")
    parser.add_argument("--workloads", type=int, default=10_000)
    args = parser.parse_args(argv)

    results: dict[str, object] = {"machine": describe(), "command": "python -m benchmarks schedule " + " ".join(argv)}
    per_kind = {}
    for kind, spec in KINDS.items():
        schedule = parse_schedule(spec)
        per_kind[kind] = {
            "matches_us": cpu_per_call(lambda s=schedule: s.matches(AT)) * 1e6,  # type: ignore[misc]
            "parse_cached_us": cpu_per_call(lambda s=spec: parse_schedule(s)) * 1e6,  # type: ignore[misc]
            "next_change_us": cpu_per_call(lambda s=schedule: s.next_change(AT), budget=0.2) * 1e6,  # type: ignore[misc]
        }
        print(
            f"{kind:16s} matches {per_kind[kind]['matches_us']:6.2f} µs   parse (cached) "
            f"{per_kind[kind]['parse_cached_us']:5.2f} µs   next_change {per_kind[kind]['next_change_us']:7.1f} µs"
        )
    results["per_kind"] = per_kind

    pool = specs(200)
    annotations = [(pool[i % 200], f"Sat-Sun 00:00-24:00 {ZONES[i % len(ZONES)]}") for i in range(args.workloads)]
    one_pass(annotations, clear=False)  # warm the cache, as after the controller's first pass
    cached = min(one_pass(annotations, clear=False) for _ in range(3))
    uncached = min(one_pass(annotations[: args.workloads // 10], clear=True) for _ in range(2)) * 10
    results["pass"] = {"workloads": args.workloads, "cached_cpu_s": cached, "uncached_cpu_s_est": uncached}
    print(
        f"pass over {args.workloads} workloads (2 specs each): {cached * 1e3:.1f} ms CPU with the parse cache, "
        f"{uncached * 1e3:.1f} ms re-parsing every annotation (x{uncached / cached:.1f})"
    )
    horizon_check = parse_schedule(KINDS["recurring"]).next_change(AT, horizon=timedelta(days=366))
    print(f"next_change sanity: {horizon_check.isoformat() if horizon_check else None}")
    print("machine:", describe())
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "schedule.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0
