"""Pod Security Standards (upstream's `k8s.io/pod-security-admission`): `checks` holds every
check of the baseline and restricted levels, `policy` reads a namespace's labels and evaluates
a pod against a level. The admission plugin (`lks.kube.admission.podsecurity`) uses both."""
