"""Admission policies in CEL (ValidatingAdmissionPolicy and its bindings): `expressions`
compiles CEL with the names admission gives it, `matching` decides which requests a policy or
binding selects, `compiled` turns the stored objects into what admission runs, `source` keeps
them indexed as they change, `params` finds a binding's params, `evaluate` runs one policy and
`authorizer` is the CEL `authorizer`. The admission plugin is
`lks.kube.admission.validatingpolicy`; the checks at create are
`lks.kube.typevalidation.admissionpolicy`.
"""
