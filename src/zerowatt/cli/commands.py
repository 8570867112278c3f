"""The table of top-level commands and the root's help lines: plain data, shared by the fast entry point
(:mod:`zerowatt.cli.main`), the typer application (:mod:`zerowatt.cli.root`) and the help renderer
(:mod:`zerowatt.cli.roothelp`), so that none of them imports another to read it.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple


class LazyCommand(NamedTuple):
    """A top-level command: the module whose ``register(app)`` adds it, and its one-line help."""

    module: str
    summary: str


#: Every top-level command besides ``version``, in the order ``zerowatt --help`` lists them.
COMMANDS: dict[str, LazyCommand] = {
    "check": LazyCommand(
        "zerowatt.cli.apps",
        "Validate manifests without serving: apps, routes, components and executors (secrets redacted).",
    ),
    "build": LazyCommand(
        "zerowatt.cli.apps",
        "Run each component's build command (in its workdir, with a shell); stop at the first failure.",
    ),
    "up": LazyCommand(
        "zerowatt.cli.up", "Serve the apps of MANIFEST... on 127.0.0.1 with a fresh WebAssembly instance per request."
    ),
    "simulate": LazyCommand(
        "zerowatt.cli.simulate",
        "Replay an Azure Functions 2019 trace through autoscaling policies (cold starts, idle time, energy).",
    ),
    "downscaler": LazyCommand(
        "zerowatt.cli.downscaler",
        "Scale workloads down off-hours and back up: a drop-in replacement for kube-downscaler.",
    ),
    "operator": LazyCommand(
        "zerowatt.cli.operator",
        "Serve SpinApps (SpinKube's, unchanged) and WasmApps on Kubernetes: Deployments, Services, status.",
    ),
    "activator": LazyCommand(
        "zerowatt.cli.activator",
        "Hold requests for apps scaled to zero on Kubernetes, scale them up and proxy; autoscale them.",
    ),
    "rightsize": LazyCommand(
        "zerowatt.cli.rightsize",
        "Recommend CPU/memory requests as the VPA (or KRR) would, and show the cores, GiB and watts they free.",
    ),
    "capacity": LazyCommand(
        "zerowatt.cli.capacity",
        "What a cluster's capacity is for (base, variable, safety, growth, redundancy, idle); which nodes can go.",
    ),
    "energy": LazyCommand(
        "zerowatt.cli.energy", "Energy per node, process, container and command, with PUE, water and carbon."
    ),
    "pull": LazyCommand(
        "zerowatt.cli.pull",
        "Fetch a Spin app from an OCI registry (as `spin registry push` wrote it) or a digest-pinned URL.",
    ),
    "schedule": LazyCommand(
        "zerowatt.cli.schedule", "Downscaler schedules (kube-downscaler grammar): check when a spec matches."
    ),
}


#: The root's own help line, ``--version``'s, and the ``version`` command's (typer shows them too).
ROOT_HELP = "0 servers == 0 watts: run only what you need."
VERSION_OPTION_HELP = "Print zerowatt's version and exit."
VERSION_COMMAND_HELP = "Print zerowatt's version."


def package_version() -> str:
    """The installed distribution's version (``zerowatt.__version__`` in a bare source tree).

    Read from the ``zerowatt-<version>.dist-info`` directory on ``sys.path`` (a directory listing);
    ``importlib.metadata`` costs ~50–150 ms of imports, a third of ``zerowatt --version`` otherwise.
    """
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("zerowatt-") and name.endswith(".dist-info"):
                return name.removeprefix("zerowatt-").removesuffix(".dist-info")
    from importlib.metadata import PackageNotFoundError, version  # pragma: no cover - other layouts

    try:  # pragma: no cover
        return version("zerowatt")
    except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
        from zerowatt import __version__

        return __version__
