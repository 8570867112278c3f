"""Power sources: adapters that read energy from hardware (RAPL, hwmon, NVML) or estimate it (the model).

Every source says what it measures and how far to trust it (:class:`~zerowatt.energy.sources.base.SourceInfo`).
"""
