"""`make bench`: every benchmark, printed as the table the README's performance section shows.

A benchmark that fails is reported (traceback on stderr, a `FAILED` row in the table) and the
others still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import api_bench  # noqa: E402
import apply_bench  # noqa: E402
import arm_bench  # noqa: E402
import audit_bench  # noqa: E402
import authz_bench  # noqa: E402
import autoscaler_bench  # noqa: E402
import azure_builtins_bench  # noqa: E402
import azure_rbac_bench  # noqa: E402
import cel_bench  # noqa: E402
import csr_bench  # noqa: E402
import density_bench  # noqa: E402
import dns_bench  # noqa: E402
import gatekeeper_bench  # noqa: E402
import identity_bench  # noqa: E402
import ingress_bench  # noqa: E402
import metrics_bench  # noqa: E402
import netpol_bench  # noqa: E402
import node_authz_bench  # noqa: E402
import podnet_bench  # noqa: E402
import policy_bench  # noqa: E402
import policy_propagation_bench  # noqa: E402
import process_bench  # noqa: E402
import proxy_bench  # noqa: E402
import rego_bench  # noqa: E402
import satoken_bench  # noqa: E402
import scheduler_bench  # noqa: E402
import store_bench  # noqa: E402
import upgrade_bench  # noqa: E402
import webhook_bench  # noqa: E402
import workload_bench  # noqa: E402

BENCHES: list[tuple[str, Callable[[], dict[str, float]]]] = [
    ("raw SQLite store", lambda: asyncio.run(store_bench.run())),
    ("API", api_bench.run),
    ("authorization (in process)", lambda: asyncio.run(authz_bench.run())),
    ("node authorization (in process)", lambda: asyncio.run(node_authz_bench.run())),
    ("service-account tokens (in process)", lambda: asyncio.run(satoken_bench.run())),
    ("apply", apply_bench.run),
    ("audit log", audit_bench.run),
    ("management API", arm_bench.run),
    ("idle cluster density (in process)", density_bench.run),
    ("token issuer (in process)", lambda: asyncio.run(identity_bench.run())),
    ("certificates API", csr_bench.run),
    ("scheduler (in process)", lambda: asyncio.run(scheduler_bench.run())),
    ("admission policies (in process)", lambda: asyncio.run(policy_bench.run())),
    ("Gatekeeper (in process)", lambda: asyncio.run(gatekeeper_bench.run())),
    ("Azure Policy built-ins in CEL (in process)", azure_builtins_bench.run),
    ("Azure Policy propagation (in process)", lambda: asyncio.run(policy_propagation_bench.run())),
    ("workloads", workload_bench.run),
    ("Process runtime", lambda: asyncio.run(process_bench.run())),
    ("pod network (in process, root)", lambda: asyncio.run(podnet_bench.run())),
    ("Service VIPs (in process, root, nft)", lambda: asyncio.run(proxy_bench.run())),
    ("CEL", cel_bench.run),
    ("Rego (Gatekeeper templates, in process)", rego_bench.run),
    ("admission webhook", webhook_bench.run),
    ("upgrades", upgrade_bench.run),
    ("cluster autoscaler (in process)", autoscaler_bench.run),
    ("Azure RBAC (in process)", lambda: asyncio.run(azure_rbac_bench.run())),
    ("metrics API", metrics_bench.run),
    ("cluster DNS (in process)", lambda: asyncio.run(dns_bench.run())),
    ("app routing ingress (in process, root)", lambda: asyncio.run(ingress_bench.run())),
    ("network policy (in process, root for the apply)", lambda: asyncio.run(netpol_bench.run())),
]


def main() -> None:
    rows: list[tuple[str, float]] = []
    failed: list[str] = []
    for prefix, run in BENCHES:
        try:
            figures = run()
        except Exception as err:
            traceback.print_exc()
            failed.append(prefix)
            rows.append((f"{prefix}: FAILED ({type(err).__name__})", float("nan")))
            continue
        rows += [(f"{prefix}: {k}", v) for k, v in figures.items()]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v:>10,.1f}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
