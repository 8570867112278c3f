"""Concurrency from two scrapes of a pod's /metrics (Little's law), and a parser that never breaks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerowatt.activator.podmetrics import PodSample, load_between, parse_sample

TEXT = """# HELP zerowatt_request_duration_seconds Time from routing to the response being ready.
# TYPE zerowatt_request_duration_seconds histogram
zerowatt_request_duration_seconds_bucket{app="a",component="x",le="0.1"} 3.0
zerowatt_request_duration_seconds_sum{app="a",component="x"} 1.5
zerowatt_request_duration_seconds_count{app="a",component="x"} 3.0
zerowatt_request_duration_seconds_sum{app="b",component="y , }"} 0.5
zerowatt_request_duration_seconds_count{app="b",component="y , }"} 1.0
zerowatt_requests_total{app="a",component="x",code="200"} 3.0
zerowatt_request_duration_seconds_sum{app="c"} NaN
zerowatt_request_duration_seconds_sum garbage
"""


def test_sums_over_apps_and_components_and_skips_garbage() -> None:
    s = parse_sample(TEXT, at=10.0)
    assert s == PodSample(10.0, 4.0, 2.0)


@pytest.mark.parametrize(
    ("before", "after", "concurrency", "completed"),
    [
        (None, PodSample(1, 5, 2), 0.0, 0.0),  # first scrape: no interval yet
        (PodSample(0, 0, 0), PodSample(2, 4, 3), 1.5, 4.0),  # 3 busy seconds over 2 s
        (PodSample(0, 10, 8), PodSample(1, 2, 0.5), 0.5, 2.0),  # restarted pod: counters from zero
        (PodSample(5, 1, 1), PodSample(5, 2, 2), 0.0, 0.0),  # no time passed
    ],
)
def test_load_between_scrapes(before: PodSample | None, after: PodSample, concurrency: float, completed: float) -> None:
    load = load_between(before, after)
    assert load.concurrency == pytest.approx(concurrency)
    assert load.completed == completed


@given(st.text(max_size=2000))
def test_any_text_parses_to_non_negative_counters(text: str) -> None:
    s = parse_sample(text, 0.0)
    assert s.requests >= 0 and s.busy_seconds >= 0
