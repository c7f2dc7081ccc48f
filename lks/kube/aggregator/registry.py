"""A cluster's aggregation state: the local APIs registered in process (by group/version) and
the APIServices read from the store, which `availability` marks Available or not and
`lks.kube.http` consults for discovery and routing.
"""

from __future__ import annotations

from lks.kube.aggregator.local import LocalAPI


class Aggregator:
    def __init__(self) -> None:
        self.local: dict[tuple[str, str], LocalAPI] = {}

    def register_local(self, group: str, version: str, api: LocalAPI) -> None:
        """Serve `/apis/<group>/<version>` in process by `api` (once its APIService names no
        service, or names the add-on's own)."""
        self.local[(group, version)] = api

    def unregister_local(self, group: str, version: str) -> None:
        self.local.pop((group, version), None)
