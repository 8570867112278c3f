"""The trace simulator, batch and NumPy throughout: a day of Azure Functions invocations through any policy.

* :mod:`.trace` — the Azure Functions 2019 trace reader and its seeded expansion into invocations;
* :mod:`.periods` — busy periods, idle gaps, window replay and the accounting of a run;
* :mod:`.driver` — runs a policy's batch simulation (from the registry) under a :class:`~.driver.SimulationConfig`;
* :mod:`.pareto` — the fixed keep-alive frontier and Shahrad et al.'s Pareto sweep;
* :mod:`.plot` — the PNGs (matplotlib, imported when drawing).

Nothing here is imported by the online side (``zerowatt up``): it stays free of NumPy.
"""
