"""Pod Security admission: the checks of the baseline and restricted levels in upstream's words
(`policy.evaluate`), and the plugin over HTTP: enforce is 403, warn a Warning header, workloads
warned by their template, namespace labels validated, a new enforce level warns about existing
pods, and pod updates rechecked only when what the policies look at changes."""

from __future__ import annotations

import pytest

from lks.kube.podsecurity import policy

from .conftest import AUTH

NS = "/clusters/c1/api/v1/namespaces"
MERGE = {**AUTH, "Content-Type": "application/merge-patch+json"}
RESTRICTED = policy.LevelVersion("restricted")
BASELINE = policy.LevelVersion("baseline")
GOOD = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"}}


def c(name="c", **sc) -> dict:
    return {"name": name, "image": "busybox", **({"securityContext": sc} if sc else {})}


def pod(name: str, *containers, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": list(containers) or [c()], **spec}}


def detail(lv, spec, meta=None) -> str:
    return policy.details(policy.evaluate(lv, meta or {}, spec))


@pytest.mark.parametrize(("lv", "spec", "meta", "want"), [
    (RESTRICTED, {"containers": [c("x")]}, None,
     'allowPrivilegeEscalation != false (container "x" must set securityContext.allowPrivilegeEscalation=false), '
     'unrestricted capabilities (container "x" must set securityContext.capabilities.drop=["ALL"]), '
     'runAsNonRoot != true (pod or container "x" must set securityContext.runAsNonRoot=true), '
     'seccompProfile (pod or container "x" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
     '"Localhost")'),
    (RESTRICTED, {"containers": [c("x", **GOOD)]}, None, ""),
    (RESTRICTED, {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [c("x", allowPrivilegeEscalation=False, capabilities={"drop": ["ALL"]})]}, None, ""),
    (RESTRICTED, {"initContainers": [c("i", **{**GOOD, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
                                               "runAsUser": 0})],
                  "containers": [c("x", **{**GOOD, "runAsNonRoot": False})]}, None,
     'unrestricted capabilities (container "i" must not include "SYS_ADMIN" in securityContext.capabilities.add), '
     'runAsNonRoot != true (container "x" must not set securityContext.runAsNonRoot=false), '
     'runAsUser=0 (container "i" must not set runAsUser=0)'),
    (RESTRICTED, {"containers": [c("x", **GOOD)], "volumes": [{"name": "h", "hostPath": {"path": "/"}},
                                                               {"name": "n", "nfs": {"server": "s", "path": "/"}},
                                                               {"name": "e", "emptyDir": {}}]}, None,
     'restricted volume types (volumes "h", "n" use restricted volume types "hostPath", "nfs")'),
    (BASELINE, {"hostNetwork": True, "hostPID": True,
                "containers": [c("a", privileged=True, capabilities={"add": ["NET_ADMIN", "CHOWN"]}),
                               {**c("b"), "ports": [{"containerPort": 80, "hostPort": 8080}]}]}, None,
     'non-default capabilities (container "a" must not include "NET_ADMIN" in securityContext.capabilities.add), '
     "host namespaces (hostNetwork, hostPID), "
     'hostPort (container "b" uses hostPort 8080), '
     'privileged (container "a" must not set securityContext.privileged=true)'),
    (BASELINE, {"volumes": [{"name": "h", "hostPath": {"path": "/"}}], "containers": [c("x")]}, None,
     'hostPath volumes (volume "h")'),
    (BASELINE, {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                                {"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                                    "seLinuxOptions": {"type": "spc_t"}},
                "containers": [c("x", procMount="Unmasked", seccompProfile={"type": "Unconfined"},
                                 windowsOptions={"hostProcess": True}, appArmorProfile={"type": "Unconfined"})]},
     {"annotations": {"container.apparmor.security.beta.kubernetes.io/x": "unconfined"}},
     'forbidden AppArmor profiles (container "x" and annotation must not set AppArmor profile type to "Unconfined", '
     '"container.apparmor.security.beta.kubernetes.io/x="unconfined""), '
     'procMount (container "x" must not set securityContext.procMount to "Unmasked"), '
     'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"), '
     'seccompProfile (container "x" must not set securityContext.seccompProfile.type to "Unconfined"), '
     "forbidden sysctls (kernel.msgmax), "
     'hostProcess (container "x" must not set securityContext.windowsOptions.hostProcess=true)'),
    (BASELINE, {"containers": [{**c("x"), "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}]}, None,
     'probe or lifecycle host (container "x" uses probe or lifecycle host "10.0.0.1")'),
    (policy.LevelVersion("baseline", 33), {"containers": [{**c("x"), "livenessProbe": {
        "httpGet": {"host": "10.0.0.1", "port": 80}}}]}, None, ""),
    (policy.LevelVersion("restricted", 21), {"containers": [c("x", allowPrivilegeEscalation=False, runAsNonRoot=True,
                                                              seccompProfile={"type": "RuntimeDefault"})]}, None, ""),
    (RESTRICTED, {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [c("x")]},
     None, ""),
    # user-namespaced pods (hostUsers: false): from v1.35 root inside is fine, Unmasked /proc only at baseline
    (RESTRICTED, {"hostUsers": False, "containers": [c("x", **{**GOOD, "runAsNonRoot": False, "runAsUser": 0,
                                                              "procMount": "Unmasked"})]}, None,
     'procMount (container "x" must not set securityContext.procMount to "Unmasked")'),
    (BASELINE, {"hostUsers": False, "containers": [c("x", procMount="Unmasked")]}, None, ""),
    (policy.LevelVersion("restricted", 34), {"hostUsers": False, "containers": [c("x", **{**GOOD, "runAsUser": 0})]},
     None, 'runAsUser=0 (container "x" must not set runAsUser=0)'),
    (RESTRICTED, {"containers": [c("x", **GOOD)], "volumes": [{"name": "i", "image": {"reference": "r"}}]}, None,
     ""),
    (policy.LevelVersion("baseline", 30), {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"},
                                                               "sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]},
                                           "containers": [c("x")]}, None,
     'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "container_engine_t"), '
     "forbidden sysctls (net.ipv4.tcp_rmem)"),
    (BASELINE, {"securityContext": {"seLinuxOptions": {"type": "container_engine_t"},
                                    "sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "1"}]},
                "containers": [c("x")]}, None, ""),
], ids=["restricted-bare", "restricted-ok", "restricted-pod-level", "restricted-init", "restricted-volumes",
        "baseline-host", "baseline-hostpath", "baseline-kernel", "baseline-probe-host", "v1.33-no-probe-check",
        "v1.21-no-capabilities", "windows", "userns-restricted", "userns-baseline", "userns-v1.34", "image-volume",
        "v1.30-selinux-sysctls", "latest-selinux-sysctls"])
def test_checks_word_violations_as_upstream(lv, spec, meta, want):
    assert detail(lv, spec, meta) == want


def test_latest_is_the_clusters_own_version():
    """A 1.33 cluster knows no probe-host check (upstream's emulation version caps "latest")."""
    spec = {"containers": [{**c("x"), "livenessProbe": {"tcpSocket": {"host": "h", "port": 1}}}]}
    assert policy.evaluate(BASELINE, {}, spec, max_minor=33) == []
    assert policy.evaluate(BASELINE, {}, spec, max_minor=36)[0].reason == "probe or lifecycle host"


def test_labels_parse_with_upstreams_defaults_and_errors():
    pol, causes = policy.from_labels({"pod-security.kubernetes.io/enforce": "baseline",
                                      "pod-security.kubernetes.io/enforce-version": "v1.30"})
    assert not causes and str(pol.enforce) == "baseline:v1.30" and str(pol.warn) == "baseline:v1.30"
    assert str(pol.audit) == "privileged:latest"
    pol, causes = policy.from_labels({"pod-security.kubernetes.io/enforce": "bogus",
                                      "pod-security.kubernetes.io/warn-version": "1.30"})
    assert str(pol.enforce) == "restricted:latest"  # fail closed
    assert [x.text() for x in causes] == [
        'metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "bogus": '
        "must be one of privileged, baseline, restricted",
        'metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.30": must be "latest" or "v1.x"']


async def _namespace(client, name: str, **labels) -> None:
    labels = {f"pod-security.kubernetes.io/{k.replace('_', '-')}": v for k, v in labels.items()}
    resp = await client.post(NS, json={"metadata": {"name": name, "labels": labels}}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    await client.post(f"{NS}/{name}/serviceaccounts", json={"metadata": {"name": "default"}}, headers=AUTH)


def _warnings(resp) -> list[str]:
    return resp.headers.getall("Warning", [])


async def test_enforce_refuses_and_warn_warns(client):
    await _namespace(client, "strict", enforce="restricted")
    resp = await client.post(f"{NS}/strict/pods", json=pod("x", c("x")), headers=AUTH)
    body = await resp.json()
    assert resp.status == 403 and body["reason"] == "Forbidden"
    assert body["details"] == {"name": "x", "kind": "pods"}
    assert body["message"] == (
        'pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "x" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
        '(container "x" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container '
        '"x" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "x" must set '
        'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')
    resp = await client.post(f"{NS}/strict/pods", json=pod("ok", c("x", **GOOD)), headers=AUTH)
    assert resp.status == 201 and not _warnings(resp)

    await _namespace(client, "warned", warn="baseline", warn_version="v1.30")
    resp = await client.post(f"{NS}/warned/pods", json=pod("p", c("p", privileged=True)), headers=AUTH)
    assert resp.status == 201
    assert _warnings(resp) == ['299 - "would violate PodSecurity \\"baseline:v1.30\\": privileged '
                               '(container \\"p\\" must not set securityContext.privileged=true)"']


async def test_workloads_are_warned_by_their_template_not_refused(client):
    await _namespace(client, "apps", enforce="restricted")
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [c("web")]}}}}
    resp = await client.post("/clusters/c1/apis/apps/v1/namespaces/apps/deployments", json=dep, headers=AUTH)
    assert resp.status == 201
    (warning,) = _warnings(resp)
    assert warning.startswith('299 - "would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation')
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [c("j", privileged=True)]}}}}}}
    resp = await client.post("/clusters/c1/apis/batch/v1/namespaces/apps/cronjobs", json=cron, headers=AUTH)
    assert resp.status == 201 and "privileged (container \\\"j\\\"" in _warnings(resp)[0]


async def test_namespace_labels_are_validated(client):
    resp = await client.post(NS, json={"metadata": {"name": "bad", "labels": {
        "pod-security.kubernetes.io/enforce": "bogus"}}}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == ('Namespace "bad" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: '
                               'Invalid value: "bogus": must be one of privileged, baseline, restricted')
    await _namespace(client, "fine")
    resp = await client.patch(f"{NS}/fine", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/audit-version": "latest-ish"}}}, headers=MERGE)
    assert resp.status == 422
    assert (await resp.json())["message"].endswith('Invalid value: "latest-ish": must be "latest" or "v1.x"')


async def test_a_new_enforce_level_warns_about_existing_pods(client):
    await _namespace(client, "old")
    for name in ("b", "a", "c"):
        assert (await client.post(f"{NS}/old/pods", json=pod(name, c(name, privileged=True)),
                                  headers=AUTH)).status == 201
    await client.post(f"{NS}/old/pods", json=pod("h", c("h"), hostNetwork=True), headers=AUTH)
    resp = await client.patch(f"{NS}/old", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "baseline"}}}, headers=MERGE)
    assert resp.status == 200
    assert _warnings(resp) == [
        '299 - "existing pods in namespace \\"old\\" violate the new PodSecurity enforce level \\"baseline:latest\\""',
        '299 - "a (and 2 other pods): privileged"',
        '299 - "h: host namespaces"']
    # relaxing (or keeping) the level warns about nothing
    resp = await client.patch(f"{NS}/old", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}}, headers=MERGE)
    assert resp.status == 200 and not _warnings(resp)


async def test_pod_updates_are_rechecked_only_where_policies_look(client):
    await _namespace(client, "upd")
    assert (await client.post(f"{NS}/upd/pods", json=pod("p", c("p")), headers=AUTH)).status == 201
    await client.patch(f"{NS}/upd", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted"}}}, headers=MERGE)
    resp = await client.patch(f"{NS}/upd/pods/p", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert resp.status == 200, await resp.text()
    resp = await client.patch(f"{NS}/upd/pods/p", json={"spec": {"containers": [{"name": "p", "image": "nginx"}]}},
                              headers={**AUTH, "Content-Type": "application/strategic-merge-patch+json"})
    assert resp.status == 403
    assert (await resp.json())["message"].startswith('pods "p" is forbidden: violates PodSecurity "restricted:latest"')
