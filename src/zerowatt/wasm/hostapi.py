"""What each executor can link, and what Spin's own host interfaces are, for clear load-time errors.

zerowatt runs core modules with the WAGI executor, which links WASI preview 1 and nothing else, and
components with ``wasmtime serve``, which provides ``wasi:*`` interfaces only. A module built for
Spin's own host interfaces (``spin-config``, ``wasi_experimental_http``, ``fermyon:spin/*`` ...) or for
Spin 1's core-module HTTP ABI (the ``handle-http-request`` export) cannot run here; the loader says so
at ``zerowatt check``/``up`` instead of every request failing later. Pure decisions: the caller passes
in what the linker provides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

#: The export of Spin 1's HTTP ABI for core modules (wit-bindgen's ``spin-http`` interface).
SPIN_HTTP_EXPORT = "handle-http-request"
#: Spin 1 core-module import modules, with what zerowatt offers instead (names as in Spin 1.x's WIT files).
SPIN_CORE_IMPORTS = {
    "spin-config": "Spin 1's config interface; zerowatt gives component variables to guests as "
    "SPIN_VARIABLE_<NAME> environment variables instead",
    "wasi_experimental_http": "Spin 1's experimental outbound HTTP; WAGI guests get no network in zerowatt",
    "wasi-outbound-http": "Spin 1's outbound HTTP; WAGI guests get no network in zerowatt",
    "outbound-redis": "Spin 1's outbound Redis; WAGI guests get no network in zerowatt",
    "outbound-pg": "Spin 1's outbound PostgreSQL; WAGI guests get no network in zerowatt",
    "outbound-mysql": "Spin 1's outbound MySQL; WAGI guests get no network in zerowatt",
    "key-value": "Spin's key-value store, which zerowatt does not provide",
    "sqlite": "Spin's SQLite, which zerowatt does not provide",
    "llm": "Spin's LLM interface, which zerowatt does not provide",
}
#: Component interfaces that are Spin's own (any version), not WASI: ``wasmtime serve`` has none of them.
SPIN_COMPONENT_PACKAGES = ("fermyon:spin/", "spin:")
_SHOWN = 5


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def core_import_problem(imports: Iterable[tuple[str, str]], provided: Callable[[str, str], bool]) -> str | None:
    """Why the WAGI executor cannot link a core module with ``imports`` ((module, name) pairs), or None.

    ``provided(module, name)`` says whether the WAGI linker (WASI preview 1) defines that import.
    """
    missing = [(module, name) for module, name in imports if not provided(module, name)]
    if not missing:
        return None
    names = _listed([f"{module!r} {name!r}" for module, name in missing])
    hints = list(dict.fromkeys(SPIN_CORE_IMPORTS[m] for m, _ in missing if m in SPIN_CORE_IMPORTS))
    why = f" ({'; '.join(hints)})" if hints else ""
    return (
        f"imports (module, name) {names} that the WAGI executor cannot provide{why}; it links WASI preview 1 "
        "(wasi_snapshot_preview1) only; expected a WASI command module that imports nothing else"
    )


def component_import_problem(imports: Iterable[str]) -> str | None:
    """Why ``wasmtime serve`` cannot run a component importing these interfaces (no version), or None."""
    spin = [name for name in imports if name.startswith(SPIN_COMPONENT_PACKAGES)]
    if not spin:
        return None
    return (
        f"imports {_listed(spin)}: Spin's own host interfaces, which zerowatt does not provide (wasi:http "
        "components run on `wasmtime serve`, which has wasi:* interfaces only); expected a component that "
        "imports only wasi:* interfaces (component variables reach it as SPIN_VARIABLE_<NAME> environment variables)"
    )


def spin_http_only(exports: Iterable[str], entrypoint: str) -> str | None:
    """The message for a core module that has Spin's HTTP ABI but not the WAGI entry point, or None."""
    names = set(exports)
    if SPIN_HTTP_EXPORT not in names or entrypoint in names:
        return None
    return (
        f"exports Spin's core-module HTTP ABI {SPIN_HTTP_EXPORT!r} (Spin 1's HTTP executor), which zerowatt does "
        f"not implement, and no WAGI entry point {entrypoint!r}; expected a WASI command module for the WAGI "
        "executor, or a wasi:http component (what Spin 2+ SDKs build)"
    )


def both_abis_note(exports: Iterable[str], entrypoint: str) -> str | None:
    """For a core module exporting both the WAGI entry point and Spin's HTTP ABI: which executor runs it, and why."""
    names = set(exports)
    if SPIN_HTTP_EXPORT not in names or entrypoint not in names:
        return None
    return (
        f"the module exports both {entrypoint!r} and Spin's HTTP ABI {SPIN_HTTP_EXPORT!r}: zerowatt runs it with "
        f"the WAGI executor (CGI over stdin/stdout, calling {entrypoint!r}) because it does not implement Spin's "
        f'HTTP ABI (Spin would call {SPIN_HTTP_EXPORT!r}); set executor = {{ type = "wagi" }} to make this explicit'
    )
