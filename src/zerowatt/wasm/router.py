"""HTTP routing with Spin's semantics, over the triggers of one or more loaded apps.

Spin's rules (``spin-http`` routes, "longest matching prefix wins"):

- a route is exact (``/cart``) or a trailing wildcard (``/cart/...``), relative to the app's ``base``;
- one trailing ``/`` is ignored on both routes and paths, so ``/cart/`` matches ``/cart``;
- ``/cart/...`` matches ``/cart`` itself and everything under ``/cart/``; ``/...`` matches everything;
- an exact route beats any wildcard, and among wildcards the longest prefix wins;
- private routes (``route = { private = true }``) are never reached over HTTP.

Where Spin lets the last of two identical routes win with a warning, zerowatt refuses to load: a
duplicate (within or across apps) is a :class:`ValidationError` naming both.

Matching is on the hot path of every request, so it costs one dict lookup for exact routes and, for
wildcards, one dict lookup per path segment (longest prefix first) instead of a scan over all routes.
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

    @property
    def where(self) -> str:
        """``"<manifest>: trigger.http[<i>].route"``, for error messages."""
        index = next(i for i, t in enumerate(self.app.triggers) if t is self.trigger)
        return f"{self.app.manifest_path}: trigger.http[{index}].route"


class RouteMatch(NamedTuple):
    """The outcome of routing one path (a tuple: built on every request, it must be cheap to make)."""

    entry: RouteEntry
    path_info: str  # the rest of the path after the route's prefix (Spin's PATH_INFO); "" for an exact match

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


def effective_pattern(prefix: str, wildcard: bool) -> str:
    if wildcard:
        return prefix + "/..."
    return prefix or "/"


class Router:
    """Routes request paths to triggers; build it once per set of apps, then call :meth:`match`."""

    __slots__ = ("_cache", "_entries", "_exact", "_wildcards")

    def __init__(self, apps: Iterable[App]) -> None:
        self._cache: dict[str, RouteMatch | None] = {}
        self._exact: dict[str, RouteEntry] = {}
        self._wildcards: dict[str, RouteEntry] = {}
        self._entries: list[RouteEntry] = []
        for app in apps:
            for trigger in app.triggers:
                if trigger.route.private:
                    continue
                prefix, wildcard = effective_prefix(app.base, trigger.route.pattern)
                entry = RouteEntry(
                    app=app,
                    trigger=trigger,
                    component=app.components[trigger.component_id],
                    pattern=effective_pattern(prefix, wildcard),
                    prefix=prefix,
                    wildcard=wildcard,
                )
                table = self._wildcards if wildcard else self._exact
                previous = table.get(prefix)
                if previous is not None:
                    raise ValidationError(
                        entry.where,
                        f"duplicate route {entry.pattern!r}: already routed to component "
                        f"{previous.trigger.component_id!r} of app {previous.app.name!r} by {previous.where}; "
                        "expected each route at most once",
                    )
                table[prefix] = entry
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
        key = path[:-1] if path.endswith("/") else path
        entry = self._exact.get(key)
        if entry is not None:
            return _new_match(RouteMatch, (entry, path[len(entry.prefix) :]))
        wildcards = self._wildcards
        if not wildcards:
            return None
        # Longest prefix first: the whole path, then drop one segment at a time down to "" ("/...").
        while True:
            entry = wildcards.get(key)
            if entry is not None:
                return _new_match(RouteMatch, (entry, path[len(entry.prefix) :]))
            if not key:
                return None
            key = key[: key.rindex("/")]
