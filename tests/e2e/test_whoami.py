"""Who the API server takes the caller for (SelfSubjectReview), through `kubectl auth whoami`
and the Python client: the admin credential is AKS's client certificate `masterclient` of
`system:masters`, and every authenticated user is in `system:authenticated`."""

from __future__ import annotations

import json

from kubernetes import client


def test_kubectl_auth_whoami_names_the_admin(kubectl):
    out = json.loads(kubectl("auth", "whoami", "-o", "json").stdout)
    assert out["kind"] == "SelfSubjectReview" and out["apiVersion"] == "authentication.k8s.io/v1"
    assert out["status"]["userInfo"] == {"username": "masterclient",
                                         "groups": ["system:masters", "system:authenticated"]}
    table = kubectl("auth", "whoami").stdout
    assert "masterclient" in table and "[system:masters system:authenticated]" in table


def test_the_python_client_reviews_itself(api):
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
    assert review.status.user_info.username == "masterclient"
    assert "system:masters" in review.status.user_info.groups
