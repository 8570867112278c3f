"""HTTP routing with Spin's semantics, over the triggers of one or more loaded apps.

Spin's rules (``spin-http`` routes, "longest matching prefix wins"):

- a route is exact (``/cart``) or a trailing wildcard (``/cart/...``), relative to the app's ``base``;
- one trailing ``/`` is ignored on both routes and paths, so ``/cart/`` matches ``/cart``;
- ``/cart/...`` matches ``/cart`` itself and everything under ``/cart/``; ``/...`` matches everything;
- an exact route beats any wildcard, and among wildcards the longest prefix wins;
- private routes (``route = { private = true }``) are never reached over HTTP;
- a segment ``:name`` matches any one non-empty segment and captures it (``/users/:id``, ``/:org/repos/...``).
  When several routes match, the most specific wins segment by segment, as Spin's router (``routefinder``)
  ranks them: a literal segment beats a parameter, a parameter beats the trailing wildcard, so ``/users/me``
  beats ``/users/:id``, which beats ``/users/...``.

Where Spin lets the last of two identical routes win with a warning, zerowatt refuses to load: a
duplicate (within or across apps) is a :class:`ValidationError` naming both.

Matching is on the hot path of every request, so it costs one dict lookup for exact routes and, for
wildcards, one dict lookup per path segment (longest prefix first) instead of a scan over all routes; only
routes with parameters are scanned (and only when an app has some).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from zerowatt.errors import ValidationError
from zerowatt.wasm.model import App, Component, HttpTrigger


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One routable trigger, with its route resolved against the app's base."""

    app: App
    trigger: HttpTrigger
    component: Component
    pattern: str  # the effective pattern as the guest sees it in X_MATCHED_ROUTE: "/base/api/..."
    prefix: str  # the fixed part without the trailing slash: "/base/api" ("" for "/...")
    wildcard: bool
    segments: tuple[str, ...] = ()  # the prefix's segments ("/base/:id" → ("base", ":id"))
    #: Specificity per segment (0 literal, 1 parameter) then 2 for a trailing wildcard: lower wins.
    rank: tuple[int, ...] = ()

    @property
    def where(self) -> str:
        """``"<manifest>: trigger.http[<i>].route"``, for error messages."""
        index = next(i for i, t in enumerate(self.app.triggers) if t is self.trigger)
        return f"{self.app.manifest_path}: trigger.http[{index}].route"


class RouteMatch(NamedTuple):
    """The outcome of routing one path (a tuple: built on every request, it must be cheap to make)."""

    entry: RouteEntry
    path_info: str  # the rest of the path after the route's prefix (Spin's PATH_INFO); "" for an exact match
    params: tuple[tuple[str, str], ...] = ()  # ``:name`` captures in route order, as raw path segments

    @property
    def app(self) -> App:
        return self.entry.app

    @property
    def trigger(self) -> HttpTrigger:
        return self.entry.trigger

    @property
    def component(self) -> Component:
        return self.entry.component

    @property
    def route(self) -> str:
        """The matched route pattern, e.g. ``"/echo/..."`` (Spin's ``X_MATCHED_ROUTE``)."""
        return self.entry.pattern


#: Paths whose routing result :meth:`Router.match` remembers before starting over.
CACHE_SIZE = 4096
#: Longer paths are routed without being remembered (so the memo stays well under a few MiB).
CACHE_MAX_PATH = 256
_MISS = object()
#: ``tuple.__new__`` builds a RouteMatch without NamedTuple's Python-level ``__new__`` (3x cheaper).
_new_match = tuple.__new__


def _strip_one_slash(path: str) -> str:
    return path[:-1] if path.endswith("/") else path


def effective_prefix(base: str, pattern: str) -> tuple[str, bool]:
    """``(prefix, is_wildcard)`` of ``pattern`` under ``base``, trailing slashes normalised as in Spin."""
    wildcard = pattern.endswith("/...")
    path = pattern[: -len("/...")] if wildcard else pattern
    return _strip_one_slash(base) + _strip_one_slash(path), wildcard


def route_rank(segments: tuple[str, ...], wildcard: bool) -> tuple[int, ...]:
    """A route's specificity, compared lexicographically (lower wins): Spin's routefinder order."""
    return tuple(1 if s.startswith(":") else 0 for s in segments) + ((2,) if wildcard else ())


def effective_pattern(prefix: str, wildcard: bool) -> str:
    if wildcard:
        return prefix + "/..."
    return prefix or "/"


class Router:
    """Routes request paths to triggers; build it once per set of apps, then call :meth:`match`."""

    __slots__ = ("_cache", "_entries", "_exact", "_params", "_wildcards")

    def __init__(self, apps: Iterable[App]) -> None:
        self._cache: dict[str, RouteMatch | None] = {}
        self._exact: dict[str, RouteEntry] = {}
        self._wildcards: dict[str, RouteEntry] = {}
        self._params: dict[str, RouteEntry] = {}  # routes with parameters by shape ("users/:/...")
        self._entries: list[RouteEntry] = []
        for app in apps:
            for trigger in app.triggers:
                if trigger.route.private:
                    continue
                prefix, wildcard = effective_prefix(app.base, trigger.route.pattern)
                segments = tuple(prefix.split("/")[1:])
                entry = RouteEntry(
                    app=app,
                    trigger=trigger,
                    component=app.components[trigger.component_id],
                    pattern=effective_pattern(prefix, wildcard),
                    prefix=prefix,
                    wildcard=wildcard,
                    segments=segments,
                    rank=route_rank(segments, wildcard),
                )
                if 1 in entry.rank[: len(segments)]:  # the shape, names erased: /users/:id and /users/:name clash
                    shape = "/".join(":" if s[:1] == ":" else s for s in segments)
                    table, prefix_key = self._params, shape + ("/..." if wildcard else "")
                else:
                    table, prefix_key = (self._wildcards if wildcard else self._exact), prefix
                previous = table.get(prefix_key)
                if previous is not None:
                    raise ValidationError(
                        entry.where,
                        f"duplicate route {entry.pattern!r}: already routed to component "
                        f"{previous.trigger.component_id!r} of app {previous.app.name!r} by {previous.where}; "
                        "expected each route at most once",
                    )
                table[prefix_key] = entry
                self._entries.append(entry)

    def __iter__(self) -> Iterator[RouteEntry]:
        """The routable entries, in manifest order."""
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, path: str) -> RouteMatch | None:
        """The trigger that serves ``path`` (the raw path, without the query string), or ``None``.

        Results (misses included) are memoised per path in a bounded dict, so a path seen before costs
        one lookup; the memo is emptied when full and skips long paths, so random paths cannot grow it.
        """
        cache = self._cache
        hit = cache.get(path, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        result = self.match_uncached(path)
        if len(path) > CACHE_MAX_PATH:  # keeps the memo's memory small whatever clients send
            return result
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[path] = result
        return result

    def match_uncached(self, path: str) -> RouteMatch | None:
        """:meth:`match` without the memo: one dict lookup, then one per path segment for wildcards."""
        if not path.startswith("/"):
            return None
        found = self._match_literal(path)
        if self._params:
            return self._match_parameters(path, found)
        return found

    def _match_literal(self, path: str) -> RouteMatch | None:
        """The best route without parameters: exact first, then the longest wildcard prefix."""
        key = path[:-1] if path.endswith("/") else path
        entry = self._exact.get(key)
        if entry is not None:
            return _new_match(RouteMatch, (entry, path[len(entry.prefix) :], ()))
        wildcards = self._wildcards
        if not wildcards:
            return None
        # Longest prefix first: the whole path, then drop one segment at a time down to "" ("/...").
        while True:
            entry = wildcards.get(key)
            if entry is not None:
                return _new_match(RouteMatch, (entry, path[len(entry.prefix) :], ()))
            if not key:
                return None
            key = key[: key.rindex("/")]

    def _match_parameters(self, path: str, best: RouteMatch | None) -> RouteMatch | None:
        """``best`` or a more specific route with ``:name`` segments that matches ``path``."""
        key = path[:-1] if path.endswith("/") else path
        parts = key.split("/")[1:] if key else []
        best_rank = best[0].rank if best is not None else None
        for entry in self._params.values():
            segments = entry.segments
            count = len(segments)
            if len(parts) < count or (len(parts) > count and not entry.wildcard):
                continue
            if best_rank is not None and entry.rank >= best_rank:
                continue
            captured: list[tuple[str, str]] = []
            for segment, part in zip(segments, parts, strict=False):
                if segment[:1] == ":":
                    if not part:
                        break
                    captured.append((segment[1:], part))
                elif segment != part:
                    break
            else:
                matched = sum(len(p) + 1 for p in parts[:count])  # "/" and each matched segment
                best = _new_match(RouteMatch, (entry, path[matched:], tuple(captured)))
                best_rank = entry.rank
        return best
