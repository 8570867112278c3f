"""The host's settings: plain data, JSON round-trippable so the supervisor can hand them to workers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from zerowatt.units import MIB, Bytes, Seconds
from zerowatt.wasm.limits import DEFAULT_MEMORY_LIMIT, DEFAULT_REQUEST_TIMEOUT

if TYPE_CHECKING:
    from zerowatt.scaling.policies import PolicyConfig

DEFAULT_MAX_BODY: Bytes = 16 * MIB
#: A request head must be complete this long after its first byte (slowloris; zerowatt.host.http).
DEFAULT_HEAD_TIMEOUT: Seconds = 10.0
#: A request body must arrive at least this fast (bytes/s) after an allowance of the head timeout
#: (Apache mod_reqtimeout's default MinRate).
DEFAULT_MIN_BODY_RATE: float = 500.0
HTTP_SERVERS = ("native", "uvicorn")


@dataclass(frozen=True, slots=True)
class HostSettings:
    """Everything ``zerowatt up`` was asked for (flags already validated)."""

    manifests: tuple[str, ...] = ("spin.toml",)
    listen_host: str = "127.0.0.1"
    listen_port: int = 3000
    admin_host: str = "127.0.0.1"
    admin_port: int = 3001
    workers: int = 1
    idle_unload: Seconds | None = 60.0  # None: never unload idle components
    request_timeout: Seconds = DEFAULT_REQUEST_TIMEOUT
    memory_limit: Bytes = DEFAULT_MEMORY_LIMIT
    max_body: Bytes = DEFAULT_MAX_BODY
    head_timeout: Seconds = DEFAULT_HEAD_TIMEOUT  # request head deadline (408), native front
    min_body_rate: float = DEFAULT_MIN_BODY_RATE  # bytes/s a request body must keep up (408), native front
    variables: dict[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ()  # serve only these component ids (Spin's selective deployment); (): all
    cache_dir: str | None = None
    offload: str = "hybrid"  # zerowatt.wasm.wagi.executor.Offload
    guest_threads: int = 16  # per worker: threads for guests that outlive the inline budget
    guest_threads_per_app: int = 0  # most of those one app may hold at once (0: half, zerowatt.wasm.wagi.fairness)
    # Added to the guest threads' nice value: guests that outlive the inline budget yield the CPU to the
    # event loop (which serves the fast requests) instead of sharing it equally (docs/benchmarks.md).
    guest_nice: int = 10
    log_level: str = "info"
    http: str = "native"  # the worker's HTTP front: "native" (zerowatt.host.http) or "uvicorn" (ASGI)
    energy_summary: Seconds | None = 60.0  # seconds between joules-per-request log lines; None: no energy accounting
    # Seconds between energy samples, on the wall-clock grid (zerowatt.energy.grid): the exporter's --interval,
    # so that per-app joules add up to its per-process figures (docs/energy.md, "Conservation law 1").
    energy_interval: Seconds = 1.0
    policy: str | None = None  # autoscaling policy (zerowatt.scaling.policies); None: unload after idle_unload
    policy_options: tuple[str, ...] = ()  # KEY=VALUE, validated by zerowatt.scaling.policies.parse_policy
    drain: Seconds | None = None  # graceful stop: how long requests in flight may finish; None: request_timeout

    @property
    def drain_timeout(self) -> Seconds:
        """Seconds a stopping worker lets requests in flight finish before answering them 503."""
        return self.request_timeout if self.drain is None else self.drain

    def policy_config(self) -> PolicyConfig | None:
        """The validated autoscaling policy (None: the idle-timeout scale-to-zero)."""
        if self.policy is None:
            return None
        from zerowatt.scaling.policies import parse_policy

        return parse_policy(self.policy, self.policy_options)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HostSettings:
        data = json.loads(text)
        data["manifests"] = tuple(data["manifests"])
        data["policy_options"] = tuple(data.get("policy_options", ()))
        data["components"] = tuple(data.get("components", ()))
        return cls(**data)
