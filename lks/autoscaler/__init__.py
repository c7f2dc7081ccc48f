"""The cluster autoscaler: AKS's profile (`profile`) and upstream's algorithm over a cluster's
autoscaled pools. Keep this file free of imports: `lks.arm.model` imports `profile`."""
