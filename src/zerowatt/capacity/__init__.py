"""The capacity report: what a cluster's capacity is for, and which servers can be off.

Core (pure, NumPy arrays indexed by node, pod and container row): :mod:`.model` (the cluster as arrays),
:mod:`.snapshot` (a ``kubectl get -o json`` List → model), :mod:`.selectors` (labels, taints, affinity),
:mod:`.usage` (usage summaries per container row), :mod:`.breakdown` (the six categories), :mod:`.power`
(node power models and the watts of each category), :mod:`.pack` (the drain simulation), :mod:`.consolidate`
(zerowatt's and cluster-autoscaler's scale-down on one state), :mod:`.report` (the JSON document).
Adapters: :mod:`.load` (snapshot file, live API, usage from the right-sizer's loaders) and :mod:`.render`
(table, YAML, HTML). See ``docs/capacity.md``.
"""
