"""Role-based access control as kube-apiserver's RBAC authorizer: Roles and ClusterRoles hold
rules, RoleBindings and ClusterRoleBindings grant them to users, groups and service accounts.

`rules` matches a request against a rule and says whether rules cover others; `index` keeps
the bindings of a cluster by subject, fed by the watch caches, so a decision is a few dict
lookups; `authorizer` registers the RBAC authorizer in the cluster's chain (`lks.kube.authz`);
`bootstrap` reconciles the default policy at every start (data in `policy`); `escalation`
refuses grants of permissions the requester does not hold (its admission plugin is
`lks.kube.admission.rbacescalation`). `node` is the Node authorizer, before RBAC as upstream
orders them (its graph in `nodegraph`, its write limits `lks.kube.admission.noderestriction`).
"""

# the modules `lks.kube.authz.for_cluster` imports, in the order their authorizers run
MODULES = ("node", "authorizer")
