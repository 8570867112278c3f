"""Regenerate ``src/zerowatt/energy/data/*.csv`` from ``../shared/data/power`` (see data/NOTICE.md).

Usage: ``python scripts/derive_energy_data.py [POWER_DIR]``. A test re-derives the tables and fails if the
shipped files drift from what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from zerowatt.energy.derive import write_tables  # noqa: E402


def main(argv: list[str]) -> int:
    power_dir = Path(argv[0]) if argv else ROOT.parent / "shared" / "data" / "power"
    out_dir = ROOT / "src" / "zerowatt" / "energy" / "data"
    for note in write_tables(power_dir, out_dir):
        print(f"skipped {note}", file=sys.stderr)
    print(f"wrote tables into {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
