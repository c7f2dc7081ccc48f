"""LoadBalancer Services, as AKS's cloud provider serves them: frontend addresses from a pool
(`frontends`), the cloud-controller-manager's service controller (`controller`), each cluster's
load balancers (`balancer`) and their data path on the host (`forwarder`); `service.py` runs
them for every cluster of the service."""

from lks.net.loadbalancer.service import LoadBalancers

__all__ = ["LoadBalancers"]
