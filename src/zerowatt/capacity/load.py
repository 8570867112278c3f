"""Adapter: the cluster from a snapshot file or the live API, usage from the right-sizer's loaders.

Errors name the file and the place: JSON that does not decode (a truncated download, say) is a
:class:`ValidationError` with ``file:line:column``; the parser's own errors name the object and field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zerowatt.capacity.model import Cluster
from zerowatt.capacity.snapshot import Snapshot, parse_snapshot
from zerowatt.capacity.usage import Usage, from_accumulator
from zerowatt.errors import UsageError, ValidationError

#: What ``kubectl get nodes,pods,pdb,deploy,sts,ds -A -o json`` lists, as API paths and kinds.
LIVE_COLLECTIONS = (
    ("/api/v1/nodes", "Node"),
    ("/apis/apps/v1/deployments", "Deployment"),
    ("/apis/apps/v1/statefulsets", "StatefulSet"),
    ("/apis/apps/v1/daemonsets", "DaemonSet"),
    ("/api/v1/pods", "Pod"),
    ("/apis/policy/v1/poddisruptionbudgets", "PodDisruptionBudget"),
)


def read_snapshot(path: Path) -> Snapshot:
    """Decode a snapshot file and parse it (see :func:`zerowatt.capacity.snapshot.parse_snapshot`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the snapshot ({exc.strerror or exc})") from None
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(data.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        hint = " (the file ends early: truncated?)" if at_end and data.strip() else ""
        raise ValidationError(f"{path}:{exc.lineno}:{exc.colno}", f"not valid JSON: {exc.msg}{hint}") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(str(path), f"not UTF-8 JSON ({exc.reason} at byte {exc.start})") from None
    return parse_snapshot(doc, str(path))


def live_snapshot(kubeconfig: str | None = None, context: str | None = None) -> Snapshot:
    """List the same objects from the API server (the project's pipelined client) and parse them."""
    from zerowatt.kube.api import ApiError, KubeApi, load_api_client

    api = KubeApi(load_api_client(kubeconfig, context))
    items: list[dict[str, Any]] = []
    try:
        for path, kind in LIVE_COLLECTIONS:
            for obj in api.list(path):
                obj.setdefault("kind", kind)  # list items carry no kind of their own
                items.append(obj)
    except ApiError as exc:
        raise UsageError(f"Kubernetes API: {exc}") from None
    finally:
        api.close()
    return parse_snapshot({"kind": "List", "items": items}, "the Kubernetes API")


def usage_from_samples(
    cluster: Cluster, path: Path, history: float, end: float | None, base_q: float, peak_q: float
) -> tuple[Usage, list[str]]:
    """Usage from a ``zerowatt rightsize --samples`` file (CSV or Parquet)."""
    from zerowatt.rightsize import samples

    acc, stats = samples.load_samples(path, history, now=end, track_simple=False)
    return from_accumulator(cluster, acc, base_q, peak_q), list(stats.warnings)


def usage_from_prometheus(
    cluster: Cluster,
    url: str,
    history: float,
    end: float,
    base_q: float,
    peak_q: float,
    step: float = 60.0,
    rate_window: str = "5m",
) -> tuple[Usage, list[str]]:
    """Usage from Prometheus through the right-sizer's chunked, bounded range queries (its defaults; ``step``
    and ``rate_window`` as ``zerowatt rightsize --step/--rate-window``)."""
    from zerowatt.rightsize import prometheus

    plan = prometheus.ChunkPlan(step=step, rate_window=rate_window)
    fetched = prometheus.fetch(url, end, history, plan=plan, track_simple=False)
    warnings = list(fetched.stats.warnings)
    if fetched.partial:
        warnings.insert(0, "PARTIAL DATA: some Prometheus chunks failed; usage is incomplete")
    return from_accumulator(cluster, fetched.accumulator, base_q, peak_q), warnings
