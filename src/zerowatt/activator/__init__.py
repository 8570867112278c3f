"""The activator: holds requests for apps scaled to zero, scales them up, switches endpoints, autoscales.

Pure cores: :mod:`.hosts` (Host header → app), :mod:`.appconfig` (Deployment annotations → settings),
:mod:`.holding` (bounded holding), :mod:`.podmetrics` (pods' ``/metrics`` → samples), :mod:`.decide`
(replicas from observed concurrency), :mod:`.slices` (EndpointSlices read and written). Adapters:
:mod:`.kubeio`, :mod:`.watch`, :mod:`.proxy`, :mod:`.metrics`, :mod:`.controller`, :mod:`.server`.
"""
