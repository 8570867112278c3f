"""zerowatt's benchmarks: one module ``bench_<name>.py`` per measured claim, run with ``python -m benchmarks``."""
