"""NetworkPolicy for lks's pod networks: what a policy allows (`model`, pure, for simulated pods
and `lks aks network-policy check` too), its nftables form (`rules`), and the per-cluster
controller that keeps a cluster network's table current (`controller`)."""
