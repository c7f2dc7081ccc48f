"""Reading requests off their paths, as upstream's RequestInfoFactory."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from lks.kube.http import requestinfo


@pytest.mark.parametrize(("method", "path", "query", "expect"), [
    pytest.param("GET", "/api/v1/namespaces", {}, ("list", "", "v1", None, "namespaces", "", ""), id="list-ns"),
    pytest.param("GET", "/api/v1/namespaces/a", {}, ("get", "", "v1", None, "namespaces", "a", ""), id="get-ns"),
    pytest.param("PUT", "/api/v1/namespaces/a/finalize", {}, ("update", "", "v1", None, "namespaces", "a", "finalize"),
                 id="finalize"),
    pytest.param("GET", "/api/v1/namespaces/a/pods", {"watch": "true"}, ("watch", "", "v1", "a", "pods", "", ""),
                 id="watch"),
    pytest.param("GET", "/api/v1/watch/namespaces/a/pods", {}, ("watch", "", "v1", "a", "pods", "", ""),
                 id="legacy-watch"),
    pytest.param("PATCH", "/apis/apps/v1/namespaces/d/deployments/w/scale", {},
                 ("patch", "apps", "v1", "d", "deployments", "w", "scale"), id="scale"),
    pytest.param("DELETE", "/api/v1/namespaces/a/configmaps", {},
                 ("deletecollection", "", "v1", "a", "configmaps", "", ""), id="deletecollection"),
    pytest.param("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {},
                 ("create", "rbac.authorization.k8s.io", "v1", None, "clusterroles", "", ""), id="cluster-scoped"),
])
def test_parse(method, path, query, expect):
    info = requestinfo.parse(method, path, MultiDict(query))
    assert info.is_resource
    assert (info.verb, info.group, info.version, info.namespace, info.resource, info.name, info.subresource) == expect


@pytest.mark.parametrize("path", ["/api", "/apis", "/apis/apps", "/apis/apps/v1", "/version", "/healthz"])
def test_non_resource_paths(path):
    assert not requestinfo.parse("GET", path, MultiDict()).is_resource
