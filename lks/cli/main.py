"""Entry point of the `lks` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lks", description="A self-hosted Azure Kubernetes Service.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the service (management API and hosted control planes)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=8443, help="HTTPS port (default 8443)")
    up.add_argument("--demo", action="store_true", help="create a demo cluster and write $LKS_HOME/kubeconfig")
    up.add_argument("--store", default=None, metavar="URL",
                    help="keep cluster state in etcd (etcd://host:port/prefix) instead of SQLite files")
    up.add_argument("--compaction-interval", type=float, default=300.0, metavar="SECONDS",
                    help="how long store history is kept for watches to resume from, like "
                         "kube-apiserver's --etcd-compaction-interval (default 300)")
    up.add_argument("--log-level", default="WARNING", help="Python log level (default WARNING)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "up":
        from lks import server

        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(server.serve(host=args.host, port=args.port, demo=args.demo, store_url=args.store,
                                 history=args.compaction_interval))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
