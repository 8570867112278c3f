"""zerowatt: 0 servers == 0 watts, run only what you need.

Subpackages, one per capability, each a functional core wrapped by thin adapters:

- ``wasm``      Spin-style manifests, routing and the WebAssembly executors (WAGI, wasi:http).
- ``host``      the HTTP data plane that serves those apps (``zerowatt up``), its admin listener and metrics.
- ``energy``    power sources, the Kepler-style attribution model, facility factors and the exporter.
- ``scaling``   autoscaling policies (KPA, keep-alive, hybrid histogram, energy-aware) and the trace simulator.
- ``schedule``  the kube-downscaler time grammar.
- ``kube``      Kubernetes controllers (the downscaler) on top of ``schedule``.
- ``rightsize`` the VPA recommender's estimator and KRR-style reports.
- ``cli``       the ``zerowatt`` command, a thin layer over the library.
"""

__version__ = "0.1.0"
