"""Observability of the hosted control planes and of the service: Prometheus metrics and
control-plane logs (issue 22). Per-cluster state is plain numbers (`stats`, `histogram`), read at
scrape time (`exposition`); `apiserver` instruments the hosted API servers' requests; `logs`
keeps each cluster's kube-apiserver, kube-scheduler and kube-controller-manager logs; `service`
holds the management endpoint's own metrics. Import the modules themselves: this package
is imported by low layers (`lks.store.timing`, the work queue) and so imports nothing.

Not to be confused with `lks.metrics`, the metrics.k8s.io API (`kubectl top`).
"""

from __future__ import annotations
