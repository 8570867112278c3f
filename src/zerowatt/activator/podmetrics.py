"""The request counters a pod reports on its admin ``/metrics``, and the concurrency they imply (core).

``zerowatt up``'s admin listener exports ``zerowatt_request_duration_seconds`` (a histogram: ``_count``
requests answered, ``_sum`` seconds spent answering them, summed over apps and components here). By
Little's law the mean number of requests in flight over an interval is the time spent serving during it
divided by its length: ``Δsum / Δt``. That is the average concurrency Knative's queue-proxy reports to
its autoscaler (knative/serving ``pkg/queue/stats.go``), here derived from two scrapes. A request is
accounted when it completes, so a request longer than the scrape interval shows up late; the activator's
own in-flight count covers requests it proxies itself.

The parser reads the Prometheus text format (``name{labels} value [timestamp]``) for those two series
only; anything else, malformed lines included, is skipped, so a hostile pod can lie about its load but
cannot break the parser (the adapter bounds how much it reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DURATION_SUM = "zerowatt_request_duration_seconds_sum"
DURATION_COUNT = "zerowatt_request_duration_seconds_count"


@dataclass(frozen=True, slots=True)
class PodSample:
    """One scrape of one pod: counters summed over its apps and components, at the adapter's ``now``."""

    at: float
    requests: float  # requests answered (counter)
    busy_seconds: float  # seconds spent answering (counter)


def _value(line: str) -> tuple[str, float] | None:
    """(metric name, value) of a sample line, or None."""
    if not line or line.startswith("#"):
        return None
    brace = line.find("{")
    if brace >= 0:
        close = line.rfind("}")
        if close < brace:
            return None
        name, rest = line[:brace].strip(), line[close + 1 :].split()
    else:
        parts = line.split()
        name, rest = (parts[0], parts[1:]) if parts else ("", [])
    if not rest:
        return None
    try:
        value = float(rest[0])
    except ValueError:
        return None
    return name, value


def parse_sample(text: str, at: float) -> PodSample:
    """The counters in ``text`` (Prometheus text format); absent series count as 0."""
    requests = busy = 0.0
    for line in text.splitlines():
        parsed = _value(line.strip())
        if parsed is None:
            continue
        name, value = parsed
        if not math.isfinite(value) or value < 0:
            continue
        if name == DURATION_COUNT:
            requests += value
        elif name == DURATION_SUM:
            busy += value
    return PodSample(at, requests, busy)


@dataclass(frozen=True, slots=True)
class Load:
    """What the pods did between two scrapes: mean concurrency and whether any request completed."""

    concurrency: float
    completed: float


def load_between(before: PodSample | None, after: PodSample) -> Load:
    """The load between two scrapes of one pod (a restarted pod's counters went down: count from zero)."""
    if before is None:
        return Load(0.0, 0.0)
    dt = after.at - before.at
    if dt <= 0:
        return Load(0.0, 0.0)
    reset = after.requests < before.requests or after.busy_seconds < before.busy_seconds
    done = after.requests if reset else after.requests - before.requests
    busy = after.busy_seconds if reset else after.busy_seconds - before.busy_seconds
    return Load(busy / dt, done)
