"""`make bench`: every benchmark, printed as the table the README's performance section shows."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import api_bench  # noqa: E402
import apply_bench  # noqa: E402
import arm_bench  # noqa: E402
import store_bench  # noqa: E402


def main() -> None:
    rows: list[tuple[str, float]] = []
    rows += [(f"raw SQLite store: {k}", v) for k, v in asyncio.run(store_bench.run()).items()]
    rows += [(f"API: {k}", v) for k, v in api_bench.run().items()]
    rows += [(f"apply: {k}", v) for k, v in apply_bench.run().items()]
    rows += [(f"management API: {k}", v) for k, v in arm_bench.run().items()]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:>10,.1f}")


if __name__ == "__main__":
    main()
