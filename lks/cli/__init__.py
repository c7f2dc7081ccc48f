"""The `lks` command, shaped like `az`: `lks up` runs the service; `lks aks …` and
`lks group …` (the management API's client) come with the ARM front end."""
