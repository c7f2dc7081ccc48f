"""The `lks` command, shaped like `az`: `lks up` runs the service; `lks group …` and
`lks aks …` (with `lks aks nodepool …`) drive its management API over HTTPS like any client,
reading the endpoint and token from `$LKS_HOME/config.json`."""
