"""Run benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks NAME [ARGS...]`` (one).

Each ``benchmarks/bench_<name>.py`` defines ``main(argv: list[str]) -> int``; it prints its results
(ratios measured in the same run, the machine and the command) and writes them under
``benchmarks/results/`` so ``docs/benchmarks.md`` can quote them.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name[len("bench_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    return int(module.main(argv))


def main() -> int:
    args = sys.argv[1:]
    names = available()
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        print("available:", ", ".join(names) or "(none)")
        return 0
    if args:
        if args[0] not in names:
            print(f"unknown benchmark {args[0]!r}; available: {', '.join(names)}", file=sys.stderr)
            return 2
        return run(args[0], args[1:])
    status = 0
    for name in names:
        print(f"== {name}", flush=True)
        status |= run(name, [])
    return status


if __name__ == "__main__":
    sys.exit(main())
