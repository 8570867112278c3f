"""Every parser of user input, fed random bytes and numeric extremes: a valid parse or a clear error, never a crash.

The contract (docs/architecture.md, "bad input"): a manifest, trace, sample file, schedule, annotation or flag
that zerowatt cannot use raises :class:`~zerowatt.errors.UsageError` (``ValidationError``, exit code 2) with a
message naming where; any other exception is a traceback for the user, and a bug. Each property below draws
both unstructured input (random bytes or text) and structured input that gets past the first checks: a valid
document whose numbers are replaced by ``nan``, ``inf``, ``1e400``, ``-1``, 5,000 digits, ``²`` (a digit to
``str.isdigit`` that ``int`` refuses) and the like. What is accepted is then used (expanded, recommended,
matched), so a value that parses but breaks the next step is found too.

The HTTP head parser of the native front is fuzzed over a real socket in ``tests/host/test_http_fuzz.py``.
"""

from __future__ import annotations

import csv
import io
import math
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from zerowatt.errors import UsageError, ValidationError
from zerowatt.kube import annotations as ann
from zerowatt.kube.decide import Decision, NamespaceView, decide, grace_seconds
from zerowatt.kube.kinds import KINDS, parse_include_resources
from zerowatt.kube.matcher import schedule_matcher
from zerowatt.kube.savings import parse_quantity
from zerowatt.kube.settings import compile_regexes, make_settings
from zerowatt.parsing import parse_duration, parse_host_port, parse_timestamp, parse_unix_or_timestamp
from zerowatt.rightsize.samples import SampleFilter, load_samples, parse_selector
from zerowatt.scaling.policies import parse_policy
from zerowatt.scaling.sim.driver import SimulationConfig, parse_policies, run_policy
from zerowatt.scaling.sim.periods import prepare
from zerowatt.scaling.sim.trace import MAX_INVOCATIONS, MAX_PER_MINUTE, RUN_COLUMNS, Trace, expand, read_trace
from zerowatt.schedule import parse_schedule
from zerowatt.schedule.spans import EARLIEST, LATEST
from zerowatt.wasm.manifest.load import read_manifest
from zerowatt.wasm.manifest.outbound import parse_host_pattern
from zerowatt.wasm.manifest.parse import parse_byte_size, parse_manifest
from zerowatt.wasm.manifest.variables import parse_assignments, parse_template
from zerowatt.wasm.wagi.cgi import CgiOutputError, parse_cgi_output

#: Moderate example counts: the whole file runs in a few seconds (``make test`` runs everything).
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Number-shaped text that has broken parsers: non-finite, overflowing, non-ASCII digits, separators, huge.
EXTREMES = (
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e308", "1.7976931348623157e308",
    "4.9e-324", "1e-400", "999999999999", "99999999999999999999", "-1", "-0", "0", "0.0", "1.5", "+5", " 7 ",
    "0x10", "1_000", "1e3", "²", "٧", "１", "", " ", "\x00", "9" * 5000, "1" + "0" * 400, "-" + "9" * 30,
)  # fmt: skip
extreme_text = st.one_of(
    st.sampled_from(EXTREMES),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
extreme_values = st.one_of(
    extreme_text,
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def clear_error(exc: BaseException) -> None:
    """An error the user can act on: the project's own, with a non-empty message."""
    assert isinstance(exc, UsageError), f"{type(exc).__name__} escaped: {exc!r}"
    assert str(exc).strip(), "an error without a message"


def parses_or_refuses(parse: Callable[[], Any]) -> Any:
    """Call ``parse``; a UsageError with a message is fine, anything else fails the property."""
    try:
        return parse()
    except UsageError as exc:
        clear_error(exc)
        return None


# --------------------------------------------------------------------------------------------- spin.toml

MANIFEST = """spin_manifest_version = 2

[application]
name = "fuzz"
version = "0.1.0"

[[trigger.http]]
route = "/hello"
component = "hello"
executor = { type = "wagi" }

[component.hello]
source = "hello.wasm"
allowed_outbound_hosts = ["https://example.com"]
environment = { A = "b" }
files = [{ source = "assets", destination = "/" }]

[component.hello.tool.zerowatt]
request_timeout = 5
memory_limit = "64Mi"

[variables]
greeting = { default = "hi" }
"""


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(doc)]


MANIFEST_DOC = tomllib.loads(MANIFEST)
MANIFEST_LEAVES = _leaves(MANIFEST_DOC)


@FEW
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(lambda s: (MANIFEST + s).encode()))
def test_manifest_reader_takes_any_bytes(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("manifest") / "spin.toml"
    path.write_bytes(data)
    parses_or_refuses(lambda: read_manifest(path))


@SOME
@given(
    edits=st.lists(st.tuples(st.sampled_from(MANIFEST_LEAVES), extreme_values), min_size=1, max_size=3),
)
@example(edits=[(("component", "hello", "tool", "zerowatt", "memory_limit"), "9" * 400 + "Ti")])  # int(inf)
@example(edits=[(("component", "hello", "tool", "zerowatt", "memory_limit"), 2**80)])
@example(edits=[(("component", "hello", "tool", "zerowatt", "request_timeout"), math.nan)])
def test_manifest_values_replaced_by_extremes(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = MANIFEST_DOC
    for path, value in edits:
        try:
            doc = _replace(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced a table on this path
    spec = parses_or_refuses(lambda: parse_manifest(doc, Path("/nowhere/spin.toml")))
    if spec is not None:
        assert spec.name and spec.triggers


# --------------------------------------------------------------------------------------------- traces

INV_HEADER = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(str(m) for m in range(1, 6))
RUN_HEADER = "HashOwner,HashApp,HashFunction,Average,Count," + ",".join(RUN_COLUMNS)
MEM_HEADER = "HashOwner,HashApp,SampleCount,AverageAllocatedMb"


def _trace_files(inv: list[list[str]], run: list[list[str]], mem: list[list[str]]) -> dict[str, str]:
    def lines(header: str, rows: list[list[str]]) -> str:
        out = io.StringIO()
        out.write(header + "\n")
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

    return {
        "3_inv.csv": lines(INV_HEADER, [["o", f"a{i}", f"f{i}", "http", *r] for i, r in enumerate(inv)]),
        "3_run.csv": lines(RUN_HEADER, [["o", f"a{i}", f"f{i}", "1", "1", *r] for i, r in enumerate(run)]),
        "3_mem.csv": lines(MEM_HEADER, [["o", f"a{i}", "1", *r] for i, r in enumerate(mem)]),
    }


GOOD_TRACE = _trace_files(
    [["1", "0", "3", "0", "2"]] * 3,
    [["1", "2", "5", "10", "20", "50", "90"]] * 3,
    [["128"]] * 3,
)


def _load_and_use(directory: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (directory / name).write_bytes(data)
    trace = parses_or_refuses(lambda: read_trace(directory, 3))
    if trace is None or trace.invocations > 20_000:
        return
    # What the reader accepts, the simulator runs: no NaN or overflow waiting downstream.
    prep = prepare(expand(trace, seed=1))
    result = run_policy("keepalive", prep, SimulationConfig())
    assert math.isfinite(result.energy_joules) and result.cold_starts <= trace.invocations


@FEW
@given(which=st.sampled_from(sorted(GOOD_TRACE)), data=st.binary(max_size=400))
def test_trace_reader_takes_any_bytes(which: str, data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    _load_and_use(tmp_path_factory.mktemp("trace"), {**GOOD_TRACE, which: data})


@SOME
@given(
    inv=st.lists(st.lists(extreme_text | st.sampled_from(["0", "1", "7"]), min_size=5, max_size=5), max_size=3),
    run=st.lists(st.lists(extreme_text | st.sampled_from(["1", "25"]), min_size=7, max_size=7), max_size=3),
    mem=st.lists(st.lists(extreme_text | st.just("128"), min_size=1, max_size=1), max_size=3),
)
def test_trace_reader_numeric_extremes(
    inv: list[list[str]], run: list[list[str]], mem: list[list[str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _load_and_use(tmp_path_factory.mktemp("trace"), dict(_trace_files(inv, run, mem)))


# --------------------------------------------------------------------------------------------- samples

SAMPLES_HEADER = "timestamp,namespace,pod,container,cpu,memory,oom,cpu_request,memory_limit"
HISTORY = 14 * 86400.0


def _load_samples_and_use(path: Path) -> None:
    loaded = parses_or_refuses(lambda: load_samples(path, HISTORY, batch_rows=4))
    if loaded is not None:
        acc, _stats = loaded
        for rec in acc.recommend():
            assert math.isfinite(rec.target.cpu) and math.isfinite(rec.target.memory)


@FEW
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".parquet"]))
def test_samples_loader_takes_any_bytes(data: bytes, suffix: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("samples") / f"s{suffix}"
    path.write_bytes(SAMPLES_HEADER.encode() + b"\n" + data if suffix == ".csv" and data[:1] != b"\xff" else data)
    _load_samples_and_use(path)


@SOME
@given(
    rows=st.lists(
        st.tuples(
            extreme_text | st.sampled_from(["1700000000", "2026-11-28T00:00:00Z", "0001-01-01T00:00:00Z"]),
            extreme_text | st.sampled_from(["0.25", "2"]),
            extreme_text | st.sampled_from(["1e8", "5e8"]),
            extreme_text | st.sampled_from(["0", "1"]),
            extreme_text | st.just("0.5"),
            extreme_text | st.just("1e9"),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_samples_csv_numeric_extremes(rows: list[tuple[str, ...]], tmp_path_factory: pytest.TempPathFactory) -> None:
    out = io.StringIO()
    out.write(SAMPLES_HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for k, (t, cpu, mem, oom, req, lim) in enumerate(rows):
        writer.writerow([t, "ns", f"pod{k % 2}", "c", cpu, mem, oom, req, lim])
    path = tmp_path_factory.mktemp("samples") / "s.csv"
    path.write_text(out.getvalue(), encoding="utf-8", errors="surrogatepass")
    _load_samples_and_use(path)


floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e300, -1e300, 1.7e308, 5e-324])


@FEW
@given(
    t=st.lists(floats | st.floats(min_value=1.7e9, max_value=1.8e9), min_size=1, max_size=6),
    cpu=floats,
    mem=floats,
)
def test_samples_parquet_numeric_extremes(
    t: list[float], cpu: float, mem: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    n = len(t)
    table = pa.table(
        {
            "timestamp": t,
            "namespace": ["ns"] * n,
            "pod": ["p"] * n,
            "container": ["c"] * n,
            "cpu": [cpu] * n,
            "memory": [mem] * n,
        }
    )
    path = tmp_path_factory.mktemp("samples") / "s.parquet"
    pq.write_table(table, path)
    _load_samples_and_use(path)


@FEW
@given(
    before=st.lists(st.sampled_from(["row", "blank", "multiline"]), max_size=8),
    bad=st.sampled_from(["timestamp", "cpu", "memory"]),
    value=st.sampled_from(["yesterday", "inf", "1e400", "²"]),
)
def test_samples_errors_name_the_physical_line(
    before: list[str], bad: str, value: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Blank lines and quoted line breaks before the bad row: the error still names its line."""
    lines = [SAMPLES_HEADER]
    for k, kind in enumerate(before):
        if kind == "blank":
            lines.append("")
        elif kind == "multiline":
            lines.append(f'{1700000000 + k},ns,"pod\nwith a break",c,0.5,1e8,0,,')
        else:
            lines.append(f"{1700000000 + k},ns,pod,c,0.5,1e8,0,,")
    fields = {"timestamp": "1700000100", "cpu": "0.5", "memory": "1e8"}
    fields[bad] = value
    lines.append(f"{fields['timestamp']},ns,pod,c,{fields['cpu']},{fields['memory']},0,,")
    lines.append("1700000200,ns,pod,c,0.5,1e8,0,,")
    path = tmp_path_factory.mktemp("samples") / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    expected_line = sum(line.count("\n") + 1 for line in lines[:-1])
    with pytest.raises(ValidationError) as caught:
        load_samples(path, HISTORY, batch_rows=3)
    assert caught.value.where == f"{path}:{expected_line}"
    assert bad in caught.value.message


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(min_value=1, max_value=12), bad_at=st.integers(min_value=0, max_value=11))
def test_parquet_errors_name_the_row(rows: int, bad_at: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    bad_at %= rows
    cpu = [0.5] * rows
    cpu[bad_at] = math.inf
    table = pa.table(
        {"timestamp": [1.7e9 + i for i in range(rows)], "namespace": ["ns"] * rows, "pod": ["p"] * rows,
         "container": ["c"] * rows, "cpu": cpu, "memory": [1e8] * rows}
    )  # fmt: skip
    path = tmp_path_factory.mktemp("samples") / "s.parquet"
    pq.write_table(table, path, row_group_size=5)
    with pytest.raises(ValidationError) as caught:
        load_samples(path, HISTORY, batch_rows=3)
    assert caught.value.where == f"{path}: row {bad_at + 1}"


# --------------------------------------------------------------------------------------------- schedules

SCHEDULE_WORDS = (
    "Mon-Fri", "Sat", "sun-thu", "Xyz-Fri", "07:30-20:30", "24:00-00:00", "99:99", "7:5", "00:00", "Europe/Berlin",
    "UTC", "../etc/passwd", "Nowhere/City", "always", "NEVER", "true", "holidays", "DE-BY", "US", "ZZ-QQ",
    "2019-12-30T22:00:00+00:00-2020-01-02T07:00:00+00:00", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
    "from", "until", "2026-02-30T00:00:00Z", "-", ",", "\x00", "١٢:٣٠", "",
)  # fmt: skip
schedule_specs = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(SCHEDULE_WORDS) | st.text(max_size=6), min_size=1, max_size=6).map(" ".join),
    st.lists(st.sampled_from(SCHEDULE_WORDS), min_size=1, max_size=4).map(",".join),
)
#: Clock readings the schedule model accepts (it refuses instants within days of datetime's own limits).
instants = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None), timezones=st.just(UTC)
)


@SOME
@given(
    spec=schedule_specs,
    zone=st.none() | st.sampled_from(["Europe/Berlin", "Bad/Zone", ""]),
    weekdays=st.none() | st.sampled_from(["Mon-Fri", "Fri-Mon", "nope"]),
    at=instants,
)
def test_schedule_grammar_parses_or_refuses(spec: str, zone: str | None, weekdays: str | None, at: datetime) -> None:
    schedule = parses_or_refuses(lambda: parse_schedule(spec, default_timezone=zone, default_weekdays=weekdays))
    if schedule is not None:
        assert schedule.matches(at) in (True, False)


# --------------------------------------------------------------------------------------------- annotations

ANNOTATION_KEYS = (
    ann.UPTIME, ann.DOWNTIME, ann.UPSCALE_PERIOD, ann.DOWNSCALE_PERIOD, ann.EXCLUDE, ann.EXCLUDE_UNTIL,
    ann.DOWNTIME_REPLICAS, ann.DOWNSCALE_REPLICAS, ann.FORCE_UPTIME, ann.FORCE_DOWNTIME, ann.GRACE_PERIOD,
    ann.ORIGINAL_REPLICAS, "deployed-at",
)  # fmt: skip
annotation_values = st.one_of(
    extreme_text,
    st.sampled_from(SCHEDULE_WORDS),
    st.sampled_from(["true", "false", "15m", "1h30m", "900", "2024-12-24", "2024-12-24T18:00:00Z", "3", "0"]),
)
annotation_maps = st.dictionaries(st.sampled_from(ANNOTATION_KEYS), annotation_values, max_size=5)
MATCHER = schedule_matcher()
SETTINGS = make_settings(deployment_time_annotation="deployed-at")


@SOME
@given(
    annos=annotation_maps,
    ns_annos=annotation_maps,
    replicas=st.integers(min_value=0, max_value=2**31),
    created=st.none() | annotation_values,
    at=instants,
)
def test_downscaler_annotations_decide_or_report(
    annos: dict[str, str], ns_annos: dict[str, str], replicas: int, created: str | None, at: datetime
) -> None:
    meta: dict[str, Any] = {"name": "web", "namespace": "ns", "annotations": annos}
    if created is not None:
        meta["creationTimestamp"] = created
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {"replicas": replicas}}
    decision = decide(obj, KINDS["deployments"], NamespaceView("ns", ns_annos), SETTINGS, at, MATCHER)
    assert isinstance(decision, Decision)
    assert decision.action in ("none", "down", "up", "clear", "error", "skip")
    assert decision.reason.strip()


# --------------------------------------------------------------------------------------------- small parsers

SMALL_PARSERS: dict[str, Callable[[str], object]] = {
    "rightsize --history": lambda s: parse_duration(s, key="--history"),
    "rightsize --end": lambda s: parse_unix_or_timestamp(s, key="--end"),
    "schedule --at": lambda s: parse_timestamp(s, key="--at"),
    "downscaler grace-period": lambda s: grace_seconds(s, key="annotation"),
    "downscaler exclude-until": lambda s: parse_timestamp(s, key="annotation"),
    "up --listen": lambda s: parse_host_port(s, key="--listen"),
    "energy --listen": lambda s: parse_host_port(s, key="--listen", default_host="127.0.0.1"),
    "up --policy-option": lambda s: parse_policy("keepalive", [s]),
    "up --policy-option (kpa)": lambda s: parse_policy("kpa", [f"target={s}", f"max_scale={s}"]),
    "simulate --policy": parse_policies,
    "rightsize --selector": parse_selector,
    "samples selector": lambda s: SampleFilter(selector=parse_selector(s)),
    "memory_limit": lambda s: parse_byte_size(s, "memory_limit"),
    "template": lambda s: parse_template(s, "environment.A"),
    "up --variable": lambda s: parse_assignments([s]),
    "allowed_outbound_hosts": lambda s: parse_host_pattern(s, "allowed_outbound_hosts"),
    "downscaler --include-resources": parse_include_resources,
    "downscaler --exclude-namespaces": lambda s: compile_regexes("--exclude-namespaces", s),
}
small_inputs = st.one_of(
    extreme_text,
    st.text(max_size=40),
    st.tuples(st.sampled_from(["keep_alive", "target", "max_scale", "tick", "x", ""]), extreme_text).map("=".join),
    st.tuples(st.sampled_from(["127.0.0.1", "[::1]", "", "host"]), extreme_text).map(":".join),
    st.tuples(extreme_text, st.sampled_from(["ms", "s", "m", "h", "d", "w", "Mi", "Gi", "Ti"])).map("".join),
    st.tuples(st.sampled_from(["https://", "*://", "http://"]), st.text(max_size=10), extreme_text).map(
        lambda t: f"{t[0]}{t[1]}:{t[2]}"
    ),
)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(SMALL_PARSERS)), text=small_inputs)
@example(name="up --listen", text="127.0.0.1:²")  # "²".isdigit() is True, int("²") raises
@example(name="energy --listen", text="127.0.0.1:" + "9" * 5000)  # int() refuses over 4,300 digits
@example(name="downscaler grace-period", text="²")
@example(name="downscaler grace-period", text="9" * 5000 + "h")
@example(name="memory_limit", text="1" + "0" * 400 + "Ti")
@example(name="rightsize --history", text="1e400")
@example(name="rightsize --end", text="nan")
def test_flag_and_value_parsers_parse_or_refuse(name: str, text: str) -> None:
    parses_or_refuses(lambda: SMALL_PARSERS[name](text))


@SOME
@given(text=small_inputs)
@example(text="1e99999999999")  # decimal.Overflow
@example(text="1e999999999999999999999Ei")  # decimal.InvalidOperation
def test_kubernetes_quantities_are_a_number_or_a_value_error(text: str) -> None:
    """``parse_quantity``'s contract is ``ValueError`` (callers count an unreadable request as 0)."""
    try:
        value = parse_quantity(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(value, float)


@SOME
@given(
    out=st.binary(max_size=200)
    | st.tuples(st.binary(max_size=80), st.sampled_from([b"\n\n", b"\r\n\r\n"]), st.binary(max_size=20)).map(b"".join)
    | st.tuples(st.sampled_from(["Status: ", "Location: ", "Content-Type: "]), extreme_text).map(
        lambda t: (t[0] + t[1] + "\n\nbody").encode("utf-8", "surrogatepass")
    )
)
def test_guest_cgi_output_is_a_response_or_a_cgi_error(out: bytes) -> None:
    """A guest's stdout is hostile input too: a response with a real status, or ``CgiOutputError``."""
    try:
        response = parse_cgi_output(out)
    except CgiOutputError as exc:
        assert str(exc)
    else:
        assert 100 <= response.status <= 999


def test_the_reported_cases_name_their_line(tmp_path: Path) -> None:
    """The issue's cases, pinned: minute 999999999999, cpu=inf, memory=1e400, a bad timestamp on line 7."""
    files = dict(GOOD_TRACE)
    files["3_inv.csv"] = files["3_inv.csv"].replace("1,0,3,0,2", "1,0,999999999999,0,2", 1)
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(ValidationError, match=r"3_inv\.csv:2: column '3': '999999999999' invocations in one minute"):
        read_trace(tmp_path, 3)
    header = "timestamp,namespace,pod,container,cpu,memory\n"
    good = "".join(f"{1700000000 + 60 * k},ns,p,c,0.5,1e8\n" for k in range(5))
    for row, match in (
        ("1700000400,ns,p,c,inf,1e8", r"s\.csv:7: column cpu: expected a number of cores up to 1e6, found inf"),
        ("1700000400,ns,p,c,0.5,1e400", r"s\.csv:7: column memory: expected a number of bytes up to 2\^60"),
        ("not-a-time,ns,p,c,0.5,1e8", r"s\.csv:7: column timestamp: 'not-a-time' is not RFC 3339"),
        ("1e300,ns,p,c,0.5,1e8", r"s\.csv:7: column timestamp: 1e\+300 is outside"),
    ):
        (tmp_path / "s.csv").write_text(header + good + row + "\n")
        with pytest.raises(ValidationError, match=match):
            load_samples(tmp_path / "s.csv", HISTORY)


def test_mixed_unix_and_rfc3339_timestamps_are_read(tmp_path: Path) -> None:
    """Each value is valid alone: the column reads (it used to be refused, naming line 2)."""
    at = datetime(2026, 11, 28, tzinfo=UTC)
    rows = [f"{at.timestamp() - 60:.0f},ns,p,c,0.5,1e8", f"{at.isoformat()},ns,p,c,0.25,2e8"]
    (tmp_path / "s.csv").write_text("timestamp,namespace,pod,container,cpu,memory\n" + "\n".join(rows) + "\n")
    acc, stats = load_samples(tmp_path / "s.csv", HISTORY)
    assert acc.now == at.timestamp() and stats.rows == 2


def test_numbers_just_inside_the_limits_are_accepted(tmp_path: Path) -> None:
    """The limits refuse nonsense, not big real values: a 10-million-a-minute cell and a 14 GB function load."""
    files = dict(GOOD_TRACE)
    files["3_inv.csv"] = files["3_inv.csv"].replace("1,0,3,0,2", "1,0,10000000,0,2", 1)
    files["3_mem.csv"] = files["3_mem.csv"].replace(",128\n", ",14336\n", 1)
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    trace = read_trace(tmp_path, 3)
    assert trace.counts[0, 2] == 10_000_000 and trace.memory_gb.max() == 14.0
    assert np.isclose(trace.duration_percentiles[0, -1], 0.09)
    assert timedelta(seconds=parse_duration("100w", key="--history")).days == 700


def test_a_resampled_trace_over_the_limit_is_refused_before_allocating() -> None:
    """``--functions`` resamples past the files: the total is checked in ``expand``, not by NumPy's allocator."""
    minutes = MAX_INVOCATIONS // MAX_PER_MINUTE + 1
    trace = Trace(("f",), ("a",), np.full((1, minutes), MAX_PER_MINUTE, dtype=np.int64), np.ones((1, 7)), np.ones(1))
    with pytest.raises(ValidationError, match=r"110,000,000 invocations: more than the simulator's limit"):
        expand(trace, seed=1)
