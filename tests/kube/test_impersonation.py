"""The impersonation filter over the real HTTP layer, with a stand-in authorizer that records
what it is asked: the attributes of each part, in upstream's order, and the user that results."""

from __future__ import annotations

import pytest
from support import TOKEN

from lks.kube import authz
from lks.kube.authn import User

AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVIEW = "/clusters/c1/apis/authentication.k8s.io/v1/selfsubjectreviews"


class _Recorder:
    """Allows everything but the impersonation of `nobody` and of the group `root`."""

    def __init__(self):
        self.asked: list[authz.Attributes] = []

    async def authorize(self, attrs: authz.Attributes) -> tuple[str, str]:
        if attrs.user.anonymous:
            return authz.NO_OPINION, ""
        if attrs.verb == "impersonate":
            self.asked.append(attrs)
            if attrs.name in ("nobody", "root"):
                return authz.NO_OPINION, ""
        return authz.ALLOW, ""

    async def rules_for(self, user: User, namespace: str) -> authz.Rules:
        return authz.Rules()


@pytest.fixture
def recorder(cluster) -> _Recorder:
    rec = _Recorder()
    # a user outside system:masters, so that the chain asks the authorizer
    cluster._tokens = {k: User("jane", ("system:authenticated",)) for k in cluster._tokens}
    cluster.authorizer = authz.Chain([rec])
    return rec


async def _whoami(client, headers: list[tuple[str, str]]):
    resp = await client.post(REVIEW, json={}, headers=[*AUTH.items(), *headers])
    return resp.status, await resp.json()


def _asked(rec: _Recorder) -> list[tuple]:
    return [(a.namespace, a.api_group, a.api_version, a.resource, a.subresource, a.name) for a in rec.asked]


async def test_each_part_is_authorized_in_upstreams_order(client, recorder):
    status, out = await _whoami(client, [("Impersonate-User", "boss"), ("Impersonate-Uid", "u-1"),
                                         ("Impersonate-Group", "devs"), ("Impersonate-Group", "ops"),
                                         ("Impersonate-Extra-Scopes", "a"), ("Impersonate-Extra-Scopes", "b"),
                                         ("Impersonate-Extra-Acme.com%2Fteam", "x")])
    assert status == 201
    assert _asked(recorder) == [
        ("", "", "", "users", "", "boss"), ("", "", "", "groups", "", "devs"), ("", "", "", "groups", "", "ops"),
        ("", "authentication.k8s.io", "v1", "userextras", "scopes", "a"),
        ("", "authentication.k8s.io", "v1", "userextras", "scopes", "b"),
        ("", "authentication.k8s.io", "v1", "userextras", "acme.com/team", "x"),
        ("", "authentication.k8s.io", "v1", "uids", "", "u-1")]
    assert out["status"]["userInfo"] == {"username": "boss", "uid": "u-1",
                                         "groups": ["devs", "ops", "system:authenticated"],
                                         "extra": {"scopes": ["a", "b"], "acme.com/team": ["x"]}}


async def test_service_accounts(client, recorder):
    _, out = await _whoami(client, [("Impersonate-User", "system:serviceaccount:ns1:builder")])
    assert _asked(recorder) == [("ns1", "", "", "serviceaccounts", "", "builder")]
    assert out["status"]["userInfo"]["groups"] == ["system:serviceaccounts", "system:serviceaccounts:ns1",
                                                   "system:authenticated"]
    _, out = await _whoami(client, [("Impersonate-User", "system:serviceaccount:ns1:builder"),
                                    ("Impersonate-Group", "devs")])
    assert out["status"]["userInfo"]["groups"] == ["devs", "system:authenticated"]  # given groups are the authority
    recorder.asked.clear()
    _, out = await _whoami(client, [("Impersonate-User", "system:serviceaccount:NS_1:builder")])
    assert _asked(recorder) == [("", "", "", "users", "", "system:serviceaccount:NS_1:builder")]


async def test_authenticated_and_anonymous_groups(client, recorder):
    _, out = await _whoami(client, [("Impersonate-User", "boss"), ("Impersonate-Group", "system:unauthenticated")])
    assert out["status"]["userInfo"]["groups"] == ["system:unauthenticated"]
    recorder.asked.clear()
    resp = await client.get("/clusters/c1/api/v1/namespaces", headers=[*AUTH.items(),
                                                                        ("Impersonate-User", "system:anonymous")])
    assert resp.status == 403  # authorized as the anonymous user, but the request had credentials: 403, not 401


async def test_refusals(client, recorder):
    status, out = await _whoami(client, [("Impersonate-User", "nobody")])
    assert status == 403 and out["message"] == ('users "nobody" is forbidden: User "jane" cannot impersonate '
                                                'resource "users" in API group "" at the cluster scope')
    assert out["details"] == {"name": "nobody", "kind": "users"}
    status, out = await _whoami(client, [("Impersonate-User", "boss"), ("Impersonate-Group", "root")])
    assert status == 403 and out["message"].startswith('groups "root" is forbidden')
    # upstream's responsewriters.InternalError: plain text, not a Status
    resp = await client.post(REVIEW + "?a=1&b=2", json={}, headers=[*AUTH.items(), ("Impersonate-Group", "devs"),
                                                                  ("Impersonate-Extra-Scopes", "a"),
                                                                  ("Impersonate-Uid", "u")])
    assert resp.status == 500 and resp.content_type == "text/plain"
    assert await resp.text() == (
        'Internal Server Error: "/clusters/c1/apis/authentication.k8s.io/v1/selfsubjectreviews?a=1&amp;b=2": '
        "requested [{Group  devs    } {UserExtra  a  authentication.k8s.io/v1  scopes} "
        "{UID  u  authentication.k8s.io/v1  }] without impersonating a user\n")
