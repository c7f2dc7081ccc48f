"""Cluster networking for the Process pools' pods, on this machine's kernel.

- `netns`: network namespaces (made, entered, removed) on one thread of lks's own.
- `podnet`: one cluster's pod network: its namespace, a bridge per node with the node's pod-CIDR
  gateway, a namespace per pod with a veth into its node's bridge; sweeping what a killed
  service left.
- `dnsconfig`: a pod's /etc/resolv.conf and /etc/hosts as kubelet writes them.
- `relay`: the cluster's public API endpoint on each pod's own loopback.
- `dns/`: the cluster DNS server.
- `loadbalancer/`: LoadBalancer Services as AKS's cloud provider serves them: addresses, the
  service controller, and listeners on the host forwarding into the cluster's namespace.
- `proxy/`: Service virtual IPs, NodePorts and hostPorts (kube-proxy's nftables mode).
- `netpol/`: NetworkPolicy: what a policy allows (a pure evaluator, also behind `lks aks
  network-policy check`), compiled to the table `inet lks-netpol` of the cluster's namespace.
- `ingress/`: the app routing add-on: ingress-nginx's routing served in process on the `nginx`
  Service's address, proxying into the cluster's namespace.

The process runtime (`lks.nodes.process`) drives them; Services, load balancers and network
policy build on `podnet`'s namespaces.
"""
