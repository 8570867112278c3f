"""Routing follows Spin: exact beats wildcard, longest wildcard prefix wins, private is unreachable."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zerowatt.errors import ValidationError
from zerowatt.wasm.model import App, Component, HttpTrigger, Route
from zerowatt.wasm.router import CACHE_MAX_PATH, CACHE_SIZE, Router


def make_app(routes: list[str | None], name: str = "app", base: str = "/") -> App:
    """An app with one component per route (``None`` = private), named after its position."""
    components = {
        f"c{i}": Component(id=f"c{i}", source=Path("/m.wasm"), source_digest="sha256:0") for i in range(len(routes))
    }
    triggers = tuple(
        HttpTrigger(route=Route(pattern=r or "", private=r is None), component_id=f"c{i}") for i, r in enumerate(routes)
    )
    return App(
        name=name, manifest_path=Path(f"/apps/{name}/spin.toml"), components=components, triggers=triggers, base=base
    )


def routed(router: Router, path: str) -> str | None:
    match = router.match(path)
    return None if match is None else match.trigger.component_id


SPIN_EXAMPLE = make_app(["/users/...", "/users/admin", "/..."])


@pytest.mark.parametrize(
    ("path", "component", "path_info", "route"),
    [
        ("/users", "c0", "", "/users/..."),
        ("/users/", "c0", "/", "/users/..."),
        ("/users/1", "c0", "/1", "/users/..."),
        ("/users/1/edit", "c0", "/1/edit", "/users/..."),
        ("/users/admin", "c1", "", "/users/admin"),
        ("/users/admin/", "c1", "/", "/users/admin"),
        ("/users/admin/x", "c0", "/admin/x", "/users/..."),
        ("/usersX", "c2", "/usersX", "/..."),
        ("/", "c2", "/", "/..."),
        ("/shop/cart", "c2", "/shop/cart", "/..."),
    ],
)
def test_spin_documentation_example(path: str, component: str, path_info: str, route: str) -> None:
    match = Router([SPIN_EXAMPLE]).match(path)
    assert match is not None
    assert (match.trigger.component_id, match.path_info, match.route) == (component, path_info, route)
    assert match.app is SPIN_EXAMPLE and match.component.id == component


def test_longest_wildcard_prefix_wins_regardless_of_order() -> None:
    for routes in (
        ["/one/...", "/one/two/...", "/one/two/three/..."],
        ["/one/two/three/...", "/one/two/...", "/one/..."],
    ):
        router = Router([make_app(list(routes))])
        assert routes[routed_index(router, "/one/two/three/four")] == "/one/two/three/..."
        assert routes[routed_index(router, "/one/two/x")] == "/one/two/..."
        assert routes[routed_index(router, "/one")] == "/one/..."
        assert router.match("/two") is None


def routed_index(router: Router, path: str) -> int:
    component = routed(router, path)
    assert component is not None
    return int(component[1:])


def test_exact_routes_only_match_themselves() -> None:
    router = Router([make_app(["/cart", "/cart/checkout", "/"])])
    assert routed(router, "/cart") == "c0"
    assert routed(router, "/cart/checkout") == "c1"
    assert routed(router, "/") == "c2"
    assert routed(router, "/cart/other") is None
    assert routed(router, "/car") is None
    assert routed(router, "") is None
    assert routed(router, "cart") is None


def test_private_routes_are_never_matched() -> None:
    router = Router([make_app([None, "/public"])])
    assert len(router) == 1
    assert routed(router, "/") is None and routed(router, "/public") == "c1"
    assert [entry.trigger.component_id for entry in router] == ["c1"]


def test_base_prefixes_every_route() -> None:
    router = Router([make_app(["/hello", "/api/..."], base="/base/")])
    assert routed(router, "/base/hello") == "c0"
    assert routed(router, "/hello") is None
    match = router.match("/base/api/items/7")
    assert match is not None and match.route == "/base/api/..." and match.path_info == "/items/7"


def test_duplicates_within_an_app_name_both_triggers() -> None:
    with pytest.raises(ValidationError) as info:
        Router([make_app(["/a/...", "/b", "/a/..."])])
    assert info.value.where == "/apps/app/spin.toml: trigger.http[2].route"
    assert "trigger.http[0]" in info.value.message and "'c0'" in info.value.message


def test_duplicates_across_apps_name_both_manifests() -> None:
    with pytest.raises(ValidationError) as info:
        Router([make_app(["/x"], name="one"), make_app(["/other", "/x/"], name="two")])
    assert info.value.where == "/apps/two/spin.toml: trigger.http[1].route"
    assert "/apps/one/spin.toml: trigger.http[0].route" in info.value.message


def test_exact_and_wildcard_on_the_same_prefix_coexist() -> None:
    router = Router([make_app(["/a", "/a/..."])])
    assert routed(router, "/a") == "c0"
    assert routed(router, "/a/b") == "c1"


def reference_match(routes: list[str], path: str) -> str | None:
    """Spin's algorithm, written the slow way: scan all routes, exact first, then the longest prefix."""

    def strip(s: str) -> str:
        return s[:-1] if s.endswith("/") else s

    p = strip(path)
    best: tuple[int, str] | None = None
    for i, route in enumerate(routes):
        if route.endswith("/..."):
            prefix = strip(route[:-4])
            if (p == prefix or p.startswith(prefix + "/")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), f"c{i}")
        elif strip(route) == p:
            return f"c{i}"
    return None if best is None else best[1]


SEGMENTS = st.sampled_from(["a", "b", "ab", "c"])
PATHS = st.lists(SEGMENTS, max_size=4).map(lambda parts: "/" + "/".join(parts))
ROUTES = st.builds(lambda path, wild: (path.rstrip("/") + "/...") if wild else path, PATHS, st.booleans())


def _normal(route: str) -> tuple[str, bool]:
    wild = route.endswith("/...")
    body = route[:-4] if wild else route
    return (body[:-1] if body.endswith("/") else body), wild


@settings(max_examples=300, deadline=None)
@given(
    routes=st.lists(ROUTES, max_size=8, unique_by=_normal),
    path=st.builds(lambda p, slash: p + ("/" if slash and p != "/" else ""), PATHS, st.booleans()),
)
def test_router_agrees_with_a_linear_scan(routes: list[str], path: str) -> None:
    router = Router([make_app(list(routes))])
    assert routed(router, path) == reference_match(routes, path)
    match = router.match(path)
    assert match == router.match_uncached(path)
    if match is not None:
        assert path.startswith(match.entry.prefix)
        assert match.entry.prefix + match.path_info == path


def test_memoised_matches_stay_correct_and_bounded() -> None:
    router = Router([make_app(["/a/...", "/b"])])
    for i in range(CACHE_SIZE + 50):
        match = router.match(f"/a/{i}")
        assert match is not None and match.path_info == f"/{i}"
    assert router.match("/b") is not None and router.match("/b") == router.match_uncached("/b")
    assert router.match("/c") is None and router.match("/c") is None
    assert len(router._cache) <= CACHE_SIZE
    long_path = "/a/" + "x" * CACHE_MAX_PATH
    match = router.match(long_path)
    assert match is not None and match.path_info == "/" + "x" * CACHE_MAX_PATH
    assert long_path not in router._cache


def matched(router: Router, path: str) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
    match = router.match(path)
    return None if match is None else (match.route, match.path_info, match.params)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/users/me", ("/users/me", "", ())),  # a literal segment beats a parameter
        ("/users/42", ("/users/:id", "", (("id", "42"),))),  # a parameter beats the wildcard
        ("/users/42/", ("/users/:id", "/", (("id", "42"),))),  # one trailing slash is ignored, as for literals
        ("/users/42/x", ("/users/...", "/42/x", ())),  # nothing more specific: the wildcard
        ("/users/42/posts/7/raw", ("/users/:id/posts/:post/...", "/raw", (("id", "42"), ("post", "7")))),
        ("/users/42/posts/7", ("/users/:id/posts/:post/...", "", (("id", "42"), ("post", "7")))),
        ("/users//posts/7", ("/users/...", "//posts/7", ())),  # an empty segment is not a parameter's value
        ("/users", ("/users/...", "", ())),
        ("/acme/repos/x", ("/:org/repos/...", "/x", (("org", "acme"),))),
        ("/users/repos/x", ("/users/...", "/repos/x", ())),  # "users" literal beats ":org" at the first segment
        ("/other", ("/...", "/other", ())),
    ],
)
def test_route_parameters_rank_as_spins_router_does(path: str, expected: tuple[str, str, tuple[str, ...]]) -> None:
    routes = ["/users/me", "/users/:id", "/users/...", "/users/:id/posts/:post/...", "/:org/repos/...", "/..."]
    router = Router([make_app(list(reversed(routes)))])  # declaration order does not matter
    assert matched(router, path) == expected
    assert matched(Router([make_app(list(routes))]), path) == expected


def test_parameter_routes_of_the_same_shape_are_duplicates() -> None:
    with pytest.raises(ValidationError, match="duplicate route"):
        Router([make_app(["/users/:id", "/users/:name"])])
    assert len(Router([make_app(["/users/:id", "/users/:id/..."])])) == 2
