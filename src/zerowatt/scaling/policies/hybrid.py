"""Keep-alive style policies: after an instance goes idle, when is it (re)loaded and for how long is it kept?

Each of these policies answers, for a function whose last request just finished, with two windows measured
from that moment: a *pre-warm* delay ``p`` (the instance is unloaded at once and loaded again at ``p``; 0
keeps it loaded) and a *keep-alive* length ``k`` (it stays loaded until ``p + k``). A request arriving in
``[p, p + k]`` is warm; otherwise it pays a cold start. That shape covers:

* :class:`FixedKeepAlive` — ``p = 0``, ``k = 10 min`` (AWS Lambda's figure quoted by Shahrad et al. §4.1);
* :class:`HybridHistogram` — Shahrad et al., "Serverless in the Wild", USENIX ATC 2020, §4.2: a per-function
  histogram of idle times (1-minute bins, 4-hour range); ``p`` = 5th percentile minus a 10 % margin,
  ``p + k`` = 99th percentile plus a 10 % margin; when the histogram is not representative (coefficient of
  variation of its bin counts below 2, or no in-range idle time yet) a standard keep-alive as long as the
  histogram range (4 h, no pre-warm); when at least half of the idle times fall beyond the range, a forecast
  of the next idle time (§4.2 uses ARIMA; here a least-squares AR(1), :func:`ar1_forecast`) with a 15 %
  margin on each side: pre-warm at 85 % of it, keep-alive for 30 % of it. The thresholds (CV 2, half out of
  range) and the 15 % margin are those of the public re-implementation of the policy in DSLab FaaS
  (``HybridHistogramPolicy``), which §4.2's text leaves unnumbered;
* :class:`EnergyAware` — zerowatt's rule (derived in ``docs/scaling.md``): keep an instance warm while the
  expected cost of the cold start it would save exceeds the energy of staying warm. Without a forecast of
  the next arrival this is the ski-rental break-even ``k = E_cold / P_idle`` (2-competitive), with
  ``E_cold`` the measured start latency times the power of a starting instance (plus an optional price on
  the latency itself) and ``P_idle`` the idle-warm power. A 0.3 ms WebAssembly start gives ``k`` of about a
  millisecond: nothing stays warm; a 1 s container start keeps it warm for seconds.

The histogram arithmetic is vectorised over functions (``[F, bins]`` arrays) so the simulator and the live
autoscaler share one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from zerowatt.errors import ValidationError
from zerowatt.scaling.energy import EnergyParams
from zerowatt.units import Seconds, Watts

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FixedKeepAlive:
    """Keep an instance loaded for ``keep_alive`` seconds after its last request."""

    keep_alive: Seconds = 600.0
    name: str = "keepalive"

    def __post_init__(self) -> None:
        if self.keep_alive < 0:
            raise ValidationError("keepalive.keep_alive", f"must be >= 0 s, got {self.keep_alive}")

    def windows(self, memory_gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(pre-warm, keep-alive) per function."""
        return np.zeros_like(memory_gb), np.full_like(memory_gb, self.keep_alive)


@dataclass(frozen=True, slots=True)
class HybridParams:
    """Shahrad et al. §4.2 parameters."""

    bin_width: Seconds = 60.0  # 1-minute bins
    range: Seconds = 4 * 3600.0  # 4-hour histogram range
    head_percentile: float = 5.0
    tail_percentile: float = 99.0
    margin: float = 0.10  # 10 % off the pre-warm window, 10 % onto the keep-alive end
    cv_threshold: float = 2.0  # below: the histogram is not representative
    oob_threshold: float = 0.5  # at or above this share of out-of-range idle times: forecast the next one
    #: Keep-alive when the histogram is not representative; None: the histogram range (§4.2's "standard
    #: keep-alive" with the range as its window).
    fallback_keep_alive: Seconds | None = None
    forecast_margin: float = 0.15  # out-of-range branch: pre-warm at (1 - m) x forecast, keep 2 m x forecast

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


def ar1_forecast(idle_times: FloatArray) -> float:
    """Next idle time predicted from the sequence so far: a least-squares AR(1) around the mean.

    §4.2 forecasts out-of-range idle times with ARIMA. A function whose idle times are mostly beyond 4 hours
    has at most a handful of them per day, too few to select and fit ARIMA orders; AR(1) is ARIMA(1, 0, 0),
    the smallest member that still follows a trend from one idle time to the next, and costs microseconds.
    Fewer than three points: the last idle time (the persistence forecast).
    """
    x = np.asarray(idle_times, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    if x.size < 3:
        return float(x[-1])
    mu = float(x.mean())
    d = x - mu
    den = float((d[:-1] ** 2).sum())
    phi = float((d[1:] * d[:-1]).sum() / den) if den > 0 else 0.0
    phi = min(max(phi, -1.0), 1.0)
    return max(mu + phi * float(d[-1]), 0.0)


def out_of_range(
    params: HybridParams, hist: npt.NDArray[np.int64], oob: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Rows whose share of idle times beyond the histogram range reaches ``oob_threshold``."""
    total = np.atleast_2d(hist).sum(axis=1) + oob
    out: npt.NDArray[np.bool_] = (total > 0) & (oob >= params.oob_threshold * np.maximum(total, 1))
    return out


def hybrid_windows(
    params: HybridParams,
    hist: npt.NDArray[np.int64],
    oob: npt.NDArray[np.int64],
    forecast: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Pre-warm and keep-alive windows from idle-time histograms ``hist[F, bins]`` and out-of-range counts.

    ``forecast[F]`` is the predicted next idle time (:func:`ar1_forecast`) of the rows that are
    :func:`out_of_range` (NaN or ``None``: no forecast, the not-representative fallback is used).
    Returns ``(prewarm[F], keep_alive[F], representative[F])``: representative rows use the histogram.
    """
    hist = np.atleast_2d(hist)
    nb = hist.shape[1]
    total = hist.sum(axis=1)
    counts = hist.astype(np.float64)
    mean = total / nb
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(((counts - mean[:, None]) ** 2).sum(axis=1) / (nb - 1))
        cv = np.where(total > 0, std / mean, 0.0)
    oob_rows = out_of_range(params, hist, oob)
    representative = (total > 0) & (cv >= params.cv_threshold) & ~oob_rows
    cum = np.cumsum(hist, axis=1)
    safe_total = np.maximum(total, 1)[:, None]
    head_bin = np.argmax(cum * 100.0 >= params.head_percentile * safe_total, axis=1)
    tail_bin = np.argmax(cum * 100.0 >= params.tail_percentile * safe_total, axis=1)
    prewarm = head_bin * params.bin_width * (1.0 - params.margin)  # lower edge of the head bin, less 10 %
    end = (tail_bin + 1) * params.bin_width * (1.0 + params.margin)  # upper edge of the tail bin, plus 10 %
    prewarm = np.where(representative, prewarm, 0.0)
    keep = np.where(representative, end - prewarm, params.fallback)
    if forecast is not None:
        fc = np.asarray(forecast, dtype=np.float64)
        use = oob_rows & np.isfinite(fc)
        m = params.forecast_margin
        prewarm = np.where(use, fc * (1.0 - m), prewarm)
        keep = np.where(use, fc * 2.0 * m, keep)
    return prewarm, keep, representative


@dataclass(frozen=True, slots=True)
class HybridHistogram:
    """Shahrad et al.'s hybrid histogram policy (windows come from :func:`hybrid_windows`)."""

    params: HybridParams = field(default_factory=HybridParams)
    name: str = "hybrid"


@dataclass(frozen=True, slots=True)
class EnergyAware:
    """Keep warm exactly as long as the break-even ``E_cold / P_idle`` (see the module docstring).

    ``start_latency`` is the measured cold start; ``start_joules`` the measured energy of one start when the
    caller has it (else derived from :class:`EnergyParams`); ``latency_watts`` prices a second of added user
    latency in watts (0: energy only, the default; raise it to trade joules for latency explicitly).
    """

    start_latency: Seconds
    energy: EnergyParams = field(default_factory=EnergyParams)
    start_joules: float | None = None
    latency_watts: Watts = 0.0
    name: str = "energy"

    def __post_init__(self) -> None:
        if self.start_latency < 0:
            raise ValidationError("energy.start_latency", f"must be >= 0 s, got {self.start_latency}")
        if self.latency_watts < 0:
            raise ValidationError("energy.latency_watts", "must be >= 0")
        if self.start_joules is not None and self.start_joules < 0:
            raise ValidationError("energy.start_joules", "must be >= 0")

    def cold_cost_joules(self, memory_gb: FloatArray) -> FloatArray:
        """Expected cost of one cold start per function: start energy plus priced latency."""
        if self.start_joules is not None:
            start = np.full_like(memory_gb, self.start_joules)
        else:
            start = self.start_latency * (
                memory_gb * self.energy.memory_watts_per_gb
                + self.energy.vcpus_per_instance * self.energy.cpu_min_watts_per_vcpu
                + self.energy.active_extra_watts
            )
        out: FloatArray = start + self.latency_watts * self.start_latency
        return out

    def idle_watts(self, memory_gb: FloatArray) -> FloatArray:
        out: FloatArray = (
            memory_gb * self.energy.memory_watts_per_gb
            + self.energy.vcpus_per_instance * self.energy.cpu_min_watts_per_vcpu
        )
        return out

    def windows(self, memory_gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(pre-warm, keep-alive) per function: no pre-warm, keep-alive at the break-even."""
        idle = self.idle_watts(memory_gb)
        cost = self.cold_cost_joules(memory_gb)
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.where(idle > 0, cost / idle, np.inf)
        return np.zeros_like(memory_gb), keep
