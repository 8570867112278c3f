"""Pure decisions of the wasi:http executor: the ``wasmtime serve`` command line, the proxied request,
readiness parsing and per-request CPU attribution.

Nothing here touches processes, sockets, clocks or files: :mod:`zerowatt.wasm.wasihttp.executor` (the
adapter) feeds in readings and carries out the plans, so every rule below is unit-testable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zerowatt.units import Bytes, Seconds
from zerowatt.wasm.executor import GuestRequest
from zerowatt.wasm.hopbyhop import end_to_end

#: Extra wall-clock time wasmtime's own epoch deadline (``-W timeout``) gets beyond the proxy's
#: deadline, so the proxy answers 504 first and wasmtime then stops the runaway guest.
WASM_TIMEOUT_MARGIN: Seconds = 0.5

#: Hop-by-hop headers (RFC 9110 §7.6.1) plus the framing headers the proxy recomputes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)

_READY = re.compile(r"Serving HTTP on https?://[^\s/]*:(\d+)/")


@dataclass(frozen=True, slots=True)
class ServePlan:
    """Everything that decides how one component's ``wasmtime serve`` child is started."""

    binary: str
    source: Path
    request_timeout: Seconds
    memory_limit: Bytes
    environment: tuple[tuple[str, str], ...] = ()
    preopens: tuple[tuple[Path, str], ...] = ()  # (host dir, guest path); host dir is the private snapshot
    outbound_http: bool = False
    pooling_allocator: bool = False
    extra_args: tuple[str, ...] = field(default=())


def serve_argv(plan: ServePlan) -> list[str]:
    """The ``wasmtime serve`` argv for ``plan``, listening on an OS-chosen loopback port.

    ``--addr 127.0.0.1:0`` lets the kernel pick the port (no bind race); the child reports it in
    its "Serving HTTP on" line, see :func:`ready_port`. Limits map onto wasmtime's own options:

    * ``-W timeout=`` – epoch-based deadline on guest execution, slightly longer than the proxy's
      deadline (see :data:`WASM_TIMEOUT_MARGIN`), so runaway guests are stopped inside wasmtime;
    * ``-W max-memory-size=`` – cap on each linear memory (growth past it fails);
    * ``-S cli=y`` – link wasi:cli (environment, filesystem, ...): ``serve`` links only the proxy
      world by default, and ``--env``/``--dir`` are useless without it;
    * ``--env`` – exactly the component's environment (the host's is not inherited), by name, the
      values in the child's environment (:func:`child_environment`);
    * ``--dir host::guest`` – preopens (wasmtime 49 has no read-only preopen flag: the adapter
      passes a private read-only snapshot, so the host's files are never written);
    * ``-S allow-ip-name-lookup`` – only when outbound HTTP is allowed; ``-S inherit-network`` is
      never given, so ``wasi:sockets`` cannot reach any address.
    """
    wasm_timeout_ms = max(1, round((plan.request_timeout + WASM_TIMEOUT_MARGIN) * 1000))
    argv = [
        plan.binary,
        "serve",
        "--addr",
        "127.0.0.1:0",
        "-W",
        f"timeout={wasm_timeout_ms}ms",
        "-W",
        f"max-memory-size={plan.memory_limit}",
        "-S",
        "cli=y",
        "-S",
        "inherit-env=n",
        "-S",
        f"allow-ip-name-lookup={'y' if plan.outbound_http else 'n'}",
    ]
    if plan.pooling_allocator:
        argv += ["-O", "pooling-allocator=y"]
    for name, value in plan.environment:
        # values travel in the child's own environment (`--env NAME` inherits it), so secrets never
        # show up in /proc/<pid>/cmdline; names that would steer the wasmtime process itself
        # (LD_PRELOAD, RUST_LOG ...) are the exception and go on the command line instead.
        argv += ["--env", f"{name}={value}" if host_sensitive(name) else name]
    for host_dir, guest_path in plan.preopens:
        argv += ["--dir", f"{host_dir}::{guest_path}"]
    argv += list(plan.extra_args)
    argv.append(str(plan.source))
    return argv


#: Environment variable prefixes that change how the wasmtime process itself behaves.
HOST_SENSITIVE_PREFIXES = ("LD_", "RUST_", "WASMTIME_", "GLIBC_", "MALLOC_", "TOKIO_")


def host_sensitive(name: str) -> bool:
    """Whether ``name`` in wasmtime's own environment would change the host process (not the guest)."""
    return name.upper().startswith(HOST_SENSITIVE_PREFIXES)


def child_environment(environment: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The wasmtime process's environment: the guest's variables that :func:`serve_argv` names only.

    Nothing of the host's environment is passed (``-S inherit-env=n`` keeps it from the guest, and
    the wasmtime process does not need it either).
    """
    return {name: value for name, value in environment if not host_sensitive(name)}


def ready_port(line: str) -> int | None:
    """The port from ``wasmtime serve``'s "Serving HTTP on http://127.0.0.1:PORT/" line, else None."""
    match = _READY.search(line)
    return int(match.group(1)) if match else None


_WIT_IMPORT = re.compile(r"^\s*import\s+(?P<name>[a-zA-Z0-9:/.@-]+)\s*;", re.MULTILINE)


def world_imports(wit: str) -> tuple[str, ...]:
    """The interface imports of the world printed first by ``wasm-tools component wit``."""
    world = wit.split("\npackage ", 1)[0]  # the component's world comes first, then the packages it uses
    return tuple(m.group("name") for m in _WIT_IMPORT.finditer(world))


def outbound_violation(imports: Iterable[str], allowed_outbound_hosts: tuple[str, ...]) -> str | None:
    """Why the component may not start, or None.

    ``wasmtime serve`` always links ``wasi:http/outgoing-handler`` and has no host allow-list, so
    the executor enforces Spin's default-deny at the import level: a component that imports the
    outgoing handler must declare ``allowed_outbound_hosts``. (Which hosts it then reaches is not
    restricted by wasmtime 49; see docs/architecture.md.)
    """
    wanted = sorted(name for name in imports if name.startswith("wasi:http/outgoing-handler@"))
    if wanted and not allowed_outbound_hosts:
        return (
            f"the component imports {wanted[0]} (outgoing HTTP) but declares no allowed_outbound_hosts; "
            "add the hosts it may call to allowed_outbound_hosts"
        )
    return None


def spin_headers(request: GuestRequest) -> list[tuple[str, str]]:
    """The ``spin-*`` headers Spin adds for wasi:http components, so Spin guests see the same."""
    full_url = f"{request.scheme}://{request.host}:{request.port}{request.path}"
    if request.query:
        full_url += "?" + request.query
    return [
        ("spin-full-url", full_url),
        ("spin-path-info", request.path_info),
        ("spin-matched-route", request.matched_route),
        ("spin-component-route", request.matched_route.removesuffix("/...")),
        ("spin-raw-component-route", request.matched_route),
        ("spin-base-path", "/"),
        ("spin-client-addr", f"{request.client_addr}:{request.client_port}"),
        *(("spin-path-match-" + name.lower(), value) for name, value in request.path_params),
    ]


def encode_request(request: GuestRequest, authority: str) -> bytes:
    """The HTTP/1.1 request sent to the child: original method, path, query and end-to-end headers.

    ``Host`` keeps the client's value (the guest sees it as the authority); framing is recomputed
    (``content-length``), hop-by-hop headers, those ``Connection`` names and ``Proxy`` are dropped
    (:func:`zerowatt.wasm.hopbyhop.end_to_end`) and the ``spin-*`` headers are added.
    """
    target = request.path + ("?" + request.query if request.query else "")
    lines = [f"{request.method} {target} HTTP/1.1"]
    has_host = False
    for name, value in end_to_end(request.headers):
        if name in HOP_BY_HOP or name == "expect" or name.startswith("spin-"):  # the body is already here
            continue
        if name == "host":
            has_host = True
        lines.append(f"{name}: {value}")
    if not has_host:
        lines.append(f"host: {authority}")
    lines.extend(f"{name}: {value}" for name, value in spin_headers(request))
    lines.append(f"content-length: {len(request.body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + request.body


#: Response headers the front server sets itself: passing the child's on would send them twice.
FRONT_SERVER_HEADERS = frozenset({"date", "server"})


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The child's response headers minus hop-by-hop and framing ones (the host re-frames the body)
    and those the front server adds itself (``date``, ``server``)."""
    return [(name, value) for name, value in headers if name not in HOP_BY_HOP and name not in FRONT_SERVER_HEADERS]


class CpuLedger:
    """Splits a process's CPU time among the requests in flight while it was spent.

    The adapter reads the child's cumulative CPU time (all threads) at every request start and
    end and reports it here. CPU used between two readings is divided evenly among the requests
    in flight during that interval; CPU used while none is in flight (idle housekeeping) is kept
    in :attr:`unattributed`. A request begun before the process started (the cold start) is
    charged with the start-up CPU, because the reading starts at 0 for a new process.
    """

    __slots__ = ("_inflight", "_last", "unattributed")

    def __init__(self, cpu_now: Seconds = 0.0) -> None:
        self._last = cpu_now
        self._inflight: dict[object, Seconds] = {}
        self.unattributed: Seconds = 0.0

    def _advance(self, cpu_now: Seconds) -> None:
        delta = cpu_now - self._last
        if delta < 0:  # a new process (restart): its counter starts again at 0
            delta = cpu_now
        self._last = cpu_now
        if not delta:
            return
        if self._inflight:
            share = delta / len(self._inflight)
            for key in self._inflight:
                self._inflight[key] += share
        else:
            self.unattributed += delta

    def reset(self, cpu_now: Seconds = 0.0) -> None:
        """A new process starts: its counter begins at ``cpu_now`` (normally 0)."""
        self._last = cpu_now

    def begin(self, key: object, cpu_now: Seconds) -> None:
        self._advance(cpu_now)
        self._inflight[key] = 0.0

    def end(self, key: object, cpu_now: Seconds) -> Seconds:
        """Close ``key``'s account and return the CPU seconds charged to it."""
        self._advance(cpu_now)
        return self._inflight.pop(key, 0.0)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def __contains__(self, key: object) -> bool:
        return key in self._inflight


def environment_items(environment: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The component's environment in a stable order (the argv, and so the process, is reproducible)."""
    return tuple(sorted(environment.items()))
