"""Route matching cost: ``Router.match`` against a linear scan with Spin's rules, same run, same paths.

The router sits on every request, so its cost is measured at two sizes: the bundled examples (a
handful of routes, the demo) and 1,000 routes (a large multi-app host). The linear scan is the
obvious implementation (check every route, exact first, then the longest wildcard). ``match`` is
measured as the host calls it (memoised per path; the 2,000 test paths repeat, as real traffic does)
and uncached (``match_uncached``: every path new). Ratios are what the numbers claim, absolute times
are context (the machine is shared and noisy).

Run: ``python -m benchmarks router [--seconds S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from benchmarks.machine import describe
from zerowatt.wasm.model import App, Component, HttpTrigger, Route
from zerowatt.wasm.router import Router

RESULTS = Path(__file__).parent / "results"


def _app(routes: list[str]) -> App:
    components = {
        f"c{i}": Component(id=f"c{i}", source=Path("/m.wasm"), source_digest="sha256:0") for i in range(len(routes))
    }
    triggers = tuple(HttpTrigger(route=Route(pattern=r), component_id=f"c{i}") for i, r in enumerate(routes))
    return App(name="bench", manifest_path=Path("/bench/spin.toml"), components=components, triggers=triggers)


def _linear(routes: list[tuple[str, bool, str]], path: str) -> str | None:
    """The scan the router replaces: every route, exact first, then the longest wildcard prefix."""
    p = path[:-1] if path.endswith("/") else path
    best, best_len = None, -1
    for prefix, wildcard, component in routes:
        if not wildcard:
            if p == prefix:
                return component
        elif (p == prefix or p.startswith(prefix + "/")) and len(prefix) > best_len:
            best, best_len = component, len(prefix)
    return best


def _routes(size: int, rng: random.Random) -> list[str]:
    if size <= 6:
        return ["/hello", "/echo/...", "/files/...", "/variables", "/slow", "/hello-http"]
    routes: list[str] = ["/..."]
    while len(routes) < size:
        depth = rng.randint(1, 3)
        path = "/" + "/".join(f"s{rng.randint(0, 40)}" for _ in range(depth))
        route = path + "/..." if rng.random() < 0.5 else path
        if route not in routes:
            routes.append(route)
    return routes


def _paths(routes: list[str], rng: random.Random, count: int) -> list[str]:
    paths = []
    for _ in range(count):
        route = rng.choice(routes)
        base = route[:-4] if route.endswith("/...") else route
        paths.append(base + ("/item/42" if route.endswith("/...") else ""))
    return paths


def _time(fn: object, paths: list[str], seconds: float) -> float:
    """Nanoseconds per call, best of repeated passes within ``seconds``."""
    call = fn  # a bound method or function taking one path
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        for path in paths:
            call(path)  # type: ignore[operator]
        best = min(best, (time.perf_counter_ns() - start) / len(paths))
    return best


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks router")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (default 2)")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    results = []
    for size in (6, 1000):
        patterns = _routes(size, rng)
        router = Router([_app(patterns)])
        table = [(e.prefix, e.wildcard, e.trigger.component_id) for e in router]
        paths = _paths(patterns, rng, 2000)
        for path in paths[:200]:  # both agree before either is timed
            match = router.match(path)
            assert (None if match is None else match.trigger.component_id) == _linear(table, path), path
        cached_ns = _time(router.match, paths, args.seconds)
        uncached_ns = _time(router.match_uncached, paths, args.seconds)
        linear_ns = _time(lambda p, t=table: _linear(t, p), paths, args.seconds)
        results.append(
            {
                "routes": len(patterns),
                "match_ns": round(cached_ns),
                "match_uncached_ns": round(uncached_ns),
                "linear_scan_ns": round(linear_ns),
            }
        )
        print(
            f"{len(patterns):5d} routes: Router.match {cached_ns:6.0f} ns/path (memoised), "
            f"{uncached_ns:6.0f} ns/path (uncached); linear scan {linear_ns:7.0f} ns/path "
            f"({linear_ns / cached_ns:.1f}x / {linear_ns / uncached_ns:.1f}x)"
        )
    machine = describe()
    print(f"machine: {machine}")
    print("command: python -m benchmarks router " + " ".join(argv))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "router.json").write_text(json.dumps({"results": results, "machine": machine}, indent=2) + "\n")
    return 0
