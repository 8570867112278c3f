"""Annotation names, shared with kube-downscaler (hjacobs) and its forks so a cluster can switch either way.

The names and their values are the compatibility contract: ``downscaler/original-replicas`` holds the
replica count (an integer as a string) that kube-downscaler, py-kube-downscaler and GoKubeDownscaler all
read back on upscale, so zerowatt writes exactly the same thing.
"""

from __future__ import annotations

PREFIX = "downscaler/"
UPTIME = "downscaler/uptime"
DOWNTIME = "downscaler/downtime"
UPSCALE_PERIOD = "downscaler/upscale-period"
DOWNSCALE_PERIOD = "downscaler/downscale-period"
EXCLUDE = "downscaler/exclude"
EXCLUDE_UNTIL = "downscaler/exclude-until"
#: kube-downscaler's spelling, and the newer one of GoKubeDownscaler; the first wins when both are set.
DOWNTIME_REPLICAS = "downscaler/downtime-replicas"
DOWNSCALE_REPLICAS = "downscaler/downscale-replicas"
FORCE_UPTIME = "downscaler/force-uptime"
FORCE_DOWNTIME = "downscaler/force-downtime"
GRACE_PERIOD = "downscaler/grace-period"
#: State: the level before downscale. Its presence means "downscaled by a downscaler".
ORIGINAL_REPLICAS = "downscaler/original-replicas"
#: State for KEDA: a ``paused-replicas`` value the user had set before the downscale (py-kube-downscaler's name).
ORIGINAL_PAUSE_REPLICAS = "downscaler/original-pause-replicas"
#: State for DaemonSets: zerowatt's own record of the original node selector is not needed, because the
#: downscale only *adds* the key below; upscale removes it again (the py-kube-downscaler convention).
DAEMONSET_NODE_SELECTOR_KEY = "kube-downscaler-non-existent"
#: State for KubeVirt: the run strategy (or legacy ``running``) before the stop.
ORIGINAL_RUN_STRATEGY = "downscaler/original-run-strategy"
#: State for Argo CD Applications whose self-heal zerowatt switched off (what is read of Argo CD: ``argocd.py``).
ARGOCD_SELF_HEAL_PAUSED = "downscaler/argocd-self-heal-paused"

KEDA_PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
