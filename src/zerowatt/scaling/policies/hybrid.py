"""Shahrad et al.'s hybrid histogram policy: its parameters and its online autoscaler.

Shahrad et al., "Serverless in the Wild", USENIX ATC 2020, §4.2: a per-function histogram of idle times
(1-minute bins, 4-hour range). After the last request, the instance is unloaded at once and loaded again
at the pre-warm ``p`` = 5th percentile minus a 10 % margin; it stays loaded until ``p + k`` = 99th
percentile plus a 10 % margin. When the histogram is not representative (coefficient of variation of its
bin counts below 2, or no in-range idle time yet) a standard keep-alive as long as the histogram range
(4 h, no pre-warm); when at least half of the idle times fall beyond the range, a forecast of the next
idle time (§4.2 uses ARIMA; here a least-squares AR(1), :func:`ar1_forecast`) with a 15 % margin on each
side: pre-warm at 85 % of it, keep-alive for 30 % of it. The thresholds (CV 2, half out of range) and the
15 % margin are those of the public re-implementation of the policy in DSLab FaaS
(``HybridHistogramPolicy``), which §4.2's text leaves unnumbered.

Plain Python for one component (:func:`histogram_windows`, :class:`IdleHistogram`); the batch simulation
computes the same windows for thousands of functions at once with NumPy (:mod:`.hybrid_batch`), and a
property test checks that the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from zerowatt.errors import ValidationError
from zerowatt.scaling.online import OnlineContext, WindowAutoscaler
from zerowatt.scaling.options import option
from zerowatt.units import Seconds


@dataclass(frozen=True, slots=True)
class HybridParams:
    """Shahrad et al. §4.2 parameters; every field but ``capacity`` is also the batch simulation's."""

    bin_width: Seconds = field(default=60.0, metadata=option("idle-time histogram bin, seconds (60)"))
    range: Seconds = field(default=4 * 3600.0, metadata=option("histogram range, seconds (14400)"))
    head_percentile: float = field(default=5.0, metadata=option("percentile of the pre-warm window (5)"))
    tail_percentile: float = field(default=99.0, metadata=option("percentile of the keep-alive end (99)"))
    #: 10 % off the pre-warm window, 10 % onto the keep-alive end.
    margin: float = field(default=0.10, metadata=option("pre-warm/keep-alive margin, [0, 1) (0.1)"))
    cv_threshold: float = field(
        default=2.0,
        metadata=option("coefficient of variation below which the histogram is not representative (2)"),
    )
    oob_threshold: float = field(
        default=0.5, metadata=option("share of idle times beyond the range that switches to the forecast (0.5)")
    )
    #: Keep-alive when the histogram is not representative; None: the histogram range (§4.2's "standard
    #: keep-alive" with the range as its window).
    fallback_keep_alive: Seconds | None = field(
        default=None, metadata=option("keep-alive when not representative, seconds (default: the range)")
    )
    #: Out-of-range branch: pre-warm at (1 - m) x forecast, keep 2 m x forecast.
    forecast_margin: float = field(
        default=0.15, metadata=option("out-of-range branch: margin around the forecast idle time, [0, 1) (0.15)")
    )
    capacity: int | None = field(
        default=None,
        metadata=option("concurrent requests per instance while busy (default: unlimited)", at_least=1),
    )

    def __post_init__(self) -> None:
        if self.bin_width <= 0 or self.range < self.bin_width:
            raise ValidationError("hybrid.bin_width", "need 0 < bin_width <= range")
        if not 0 <= self.head_percentile < self.tail_percentile <= 100:
            raise ValidationError("hybrid.head_percentile", "need 0 <= head < tail <= 100")
        if not 0 <= self.margin < 1:
            raise ValidationError("hybrid.margin", "must be in [0, 1)")
        if not 0 <= self.forecast_margin < 1:
            raise ValidationError("hybrid.forecast_margin", "must be in [0, 1)")
        if self.fallback_keep_alive is not None and self.fallback_keep_alive < 0:
            raise ValidationError("hybrid.fallback_keep_alive", "must be >= 0 s (or None: the range)")

    @property
    def bins(self) -> int:
        return round(self.range / self.bin_width)

    @property
    def fallback(self) -> Seconds:
        """Keep-alive of the not-representative branch."""
        return self.range if self.fallback_keep_alive is None else self.fallback_keep_alive

    def compressed(self, factor: float) -> HybridParams:
        """The same policy on a clock ``factor`` times faster: bins, range and fallback divided by it."""
        if factor == 1:
            return self
        fallback = self.fallback_keep_alive
        return replace(
            self,
            bin_width=self.bin_width / factor,
            range=self.range / factor,
            fallback_keep_alive=None if fallback is None else fallback / factor,
        )


def ar1_forecast(idle_times: Iterable[float]) -> float:
    """Next idle time predicted from the sequence so far: a least-squares AR(1) around the mean.

    §4.2 forecasts out-of-range idle times with ARIMA. A function whose idle times are mostly beyond 4 hours
    has at most a handful of them per day, too few to select and fit ARIMA orders; AR(1) is ARIMA(1, 0, 0),
    the smallest member that still follows a trend from one idle time to the next, and costs microseconds.
    Fewer than three points: the last idle time (the persistence forecast). One implementation for the
    online autoscaler and the batch simulation (few functions ever need it).
    """
    x = [float(v) for v in idle_times]
    if not x:
        return float("nan")
    if len(x) < 3:
        return x[-1]
    mu = math.fsum(x) / len(x)
    d = [v - mu for v in x]
    den = math.fsum(v * v for v in d[:-1])
    phi = math.fsum(a * b for a, b in zip(d[1:], d[:-1], strict=True)) / den if den > 0 else 0.0
    phi = min(max(phi, -1.0), 1.0)
    return max(mu + phi * d[-1], 0.0)


def is_out_of_range(params: HybridParams, counts: Sequence[int], oob: int) -> bool:
    """Whether the share of idle times beyond the histogram range reaches ``oob_threshold``."""
    total = sum(counts) + oob
    return total > 0 and oob >= params.oob_threshold * max(total, 1)


def histogram_windows(
    params: HybridParams, counts: Sequence[int], oob: int, forecast: float | None = None
) -> tuple[Seconds, Seconds, bool]:
    """(pre-warm, keep-alive, representative) of one idle-time histogram (see the module docstring).

    ``forecast`` is the predicted next idle time (:func:`ar1_forecast`) when :func:`is_out_of_range`
    (NaN or ``None``: no forecast, the not-representative fallback is used). The one-function form of
    :func:`zerowatt.scaling.sim.hybrid_batch.hybrid_windows`.
    """
    nb = len(counts)
    total = sum(counts)
    mean = total / nb
    if total > 0 and nb > 1:
        std = math.sqrt(sum((c - mean) ** 2 for c in counts) / (nb - 1))
        cv = std / mean
    else:
        cv = 0.0 if total == 0 else math.nan
    oob_row = is_out_of_range(params, counts, oob)
    representative = total > 0 and cv >= params.cv_threshold and not oob_row
    safe_total = max(total, 1)
    head_bin = tail_bin = 0
    head_found = tail_found = False
    cum = 0
    for i, c in enumerate(counts):
        cum += c
        if not head_found and cum * 100.0 >= params.head_percentile * safe_total:
            head_bin, head_found = i, True
        if not tail_found and cum * 100.0 >= params.tail_percentile * safe_total:
            tail_bin, tail_found = i, True
            break
    prewarm = head_bin * params.bin_width * (1.0 - params.margin)  # lower edge of the head bin, less 10 %
    end = (tail_bin + 1) * params.bin_width * (1.0 + params.margin)  # upper edge of the tail bin, plus 10 %
    if representative:
        keep = end - prewarm
    else:
        prewarm, keep = 0.0, params.fallback
    if forecast is not None and oob_row and math.isfinite(forecast):
        m = params.forecast_margin
        prewarm, keep = forecast * (1.0 - m), forecast * 2.0 * m
    return prewarm, keep, representative


class IdleHistogram:
    """Shahrad et al.'s per-function idle-time histogram (1-minute bins over 4 hours, plus out-of-range)."""

    #: Idle times kept for the out-of-range forecast (a bound on memory; the simulator fits on all of a
    #: day's, which for a function mostly idle beyond 4 hours is at most a handful).
    HISTORY = 256

    def __init__(self, params: HybridParams) -> None:
        self.params = params
        self.counts = [0] * params.bins
        self.out_of_range = 0
        self.recent: list[float] = []  # the idle times the out-of-range forecast is fitted on

    def add(self, idle_time: Seconds) -> None:
        self.recent.append(max(idle_time, 0.0))
        del self.recent[: -self.HISTORY]
        b = math.floor(max(idle_time, 0.0) / self.params.bin_width)
        if b < self.params.bins:
            self.counts[b] += 1
        else:
            self.out_of_range += 1

    def windows(self) -> tuple[Seconds, Seconds]:
        forecast = None
        if is_out_of_range(self.params, self.counts, self.out_of_range):
            forecast = ar1_forecast(self.recent)
        p, k, _ = histogram_windows(self.params, self.counts, self.out_of_range, forecast)
        return p, k


def online(params: HybridParams, context: OnlineContext) -> WindowAutoscaler:
    """The online hybrid policy of one component: it learns each idle time when the next request comes."""
    hist = IdleHistogram(params.compressed(context.compression))
    return WindowAutoscaler("hybrid", hist.windows, hist.add, capacity=params.capacity)
