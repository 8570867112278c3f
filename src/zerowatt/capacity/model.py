"""The cluster as arrays: nodes, pods and container rows, indexed by integers.

Everything the breakdown and the drain simulation touch per pod lives in NumPy arrays (150,000 pods must
cost milliseconds per pass, not a dict per pod); names and the rarely used constraint objects stay in
lists and small tuples. Amounts are integers, so sums are exact: CPU in millicores (Kubernetes rounds CPU
quantities up to whole millicores), memory in bytes, ``pods`` in pods, extended resources (``nvidia.com/gpu``)
in their own units. Resource column 0 is CPU, 1 memory, 2 pods; extended resources follow, sorted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

CPU, MEMORY, PODS = 0, 1, 2
BASE_RESOURCES = ("cpu", "memory", "pods")

#: What a pod is to the drain simulation.
MOVABLE = 0  # evicted and re-scheduled elsewhere when its node is drained
NODE_BOUND = 1  # a DaemonSet or mirror (static) pod: it stays with its node and goes away with it

#: Workload kinds whose replicas can be redundant (a DaemonSet's are per node, a Job's are work items).
REPLICATED_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"})


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str  # Equal or Exists
    value: str
    effect: str  # "" matches every effect


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSchedule, PreferNoSchedule, NoExecute


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry (node affinity or label selector): key, operator, values."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """A ``metav1.LabelSelector``: every ``matchLabels`` pair and every expression must hold."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Where a pod may run: node selector, required node affinity terms (OR of ANDs), tolerations.

    Pods of one controller share a template, so one ``Placement`` is built per distinct template and
    evaluated once per distinct node signature (not once per pod and node).
    """

    node_selector: tuple[tuple[str, str], ...] = ()
    terms: tuple[tuple[Requirement, ...], ...] = ()  # empty: no required node affinity
    field_terms: tuple[tuple[Requirement, ...], ...] = ()  # matchFields (metadata.name), same index as terms
    tolerations: tuple[Toleration, ...] = ()


@dataclass(frozen=True)
class Workload:
    namespace: str
    kind: str  # Deployment, StatefulSet, DaemonSet, Job, ..., or Pod (no controller)
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass
class Pdb:
    """A PodDisruptionBudget resolved against the snapshot's pods."""

    namespace: str
    name: str
    pods: IntArray  # pod indices it selects
    min_available: int  # resolved against the pods it selects
    disruptions_allowed: int  # from status, else healthy − minAvailable


@dataclass
class AntiAffinity:
    """One required pod anti-affinity term: ``owners`` may not share a topology domain with ``matched``."""

    topology_key: str
    owners: IntArray  # pods carrying the term
    matched: IntArray  # pods its label selector selects
    description: str


@dataclass
class Spread:
    """One ``topologySpreadConstraints`` entry with ``whenUnsatisfiable: DoNotSchedule``."""

    topology_key: str
    max_skew: int
    owners: IntArray  # pods carrying the constraint
    matched: IntArray  # pods counted (its label selector, in the owners' namespace)
    description: str


@dataclass
class Cluster:
    """A snapshot's nodes, pods and containers (see the module docstring for units and columns)."""

    resources: list[str]
    # nodes (N)
    node_names: list[str]
    alloc: IntArray  # (N, R) allocatable
    node_labels: list[dict[str, str]]
    node_taints: list[tuple[Taint, ...]]
    unschedulable: BoolArray  # (N,) cordoned: never a target
    node_cpus: IntArray  # (N,) logical CPUs (status.capacity.cpu, rounded up)
    # pods (P)
    pod_ns: list[str]
    pod_names: list[str]
    pod_node: Int32Array  # (P,)
    pod_kind: npt.NDArray[np.int8]  # MOVABLE or NODE_BOUND
    pod_workload: Int32Array  # (P,) index into workloads
    pod_placement: Int32Array  # (P,) index into placements
    init_max: IntArray  # (P, R) the largest regular init container's requests
    overhead: IntArray  # (P, R) spec.overhead
    extra: IntArray  # (P, R) requests of resources beyond cpu/memory (pods = 1, extended)
    workloads: list[Workload]
    placements: list[Placement]
    # container rows (C): app containers and restartable init containers (sidecars)
    row_pod: Int32Array  # (C,)
    row_name: list[str]
    row_request: IntArray  # (C, 2) cpu millicores, memory bytes
    # constraints
    unmovable: dict[int, str] = field(default_factory=dict)  # pod → why it cannot be evicted
    ca_unmovable: dict[int, str] = field(default_factory=dict)  # pods only cluster-autoscaler refuses to move
    pdbs: list[Pdb] = field(default_factory=list)
    anti: list[AntiAffinity] = field(default_factory=list)
    spreads: list[Spread] = field(default_factory=list)

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_pods(self) -> int:
        return len(self.pod_names)

    @property
    def n_rows(self) -> int:
        return len(self.row_name)

    def pod_label(self, p: int) -> str:
        return f"{self.pod_ns[p]}/{self.pod_names[p]}"

    def app_sum(self, row_request: IntArray) -> IntArray:
        """(P, 2) per-pod sums of container rows' CPU and memory."""
        out = np.zeros((self.n_pods, 2), dtype=np.int64)
        np.add.at(out, self.row_pod, row_request)
        return out

    def pod_requests(self, row_request: IntArray | None = None) -> IntArray:
        """(P, R) what the scheduler reserves for each pod: max(containers, largest init) + overhead.

        ``row_request`` replaces the rows' CPU and memory (the right-sized scenario).
        """
        rows = self.row_request if row_request is None else row_request
        req = np.maximum(self.extra, self.init_max)
        req[:, :2] = np.maximum(self.app_sum(rows), self.init_max[:, :2])
        return np.asarray(req + self.overhead, dtype=np.int64)
