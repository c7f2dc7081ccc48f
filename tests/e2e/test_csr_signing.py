"""The certificates API end to end, through kubectl and the Python client: a user's CSR made with
`cryptography`, `kubectl certificate approve`, the certificate the cluster CA signs (csrsigning),
a kubeconfig built from it that kubectl authenticates as that user; the signers' refusals as
`Failed` conditions, auto-approved kubelet client certificates (csrapproving), denial, and the
admission checks (no `system:masters` client certificates)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.conftest import wait_until


def _request(cn: str, orgs: tuple[str, ...] = (), sans: list[x509.GeneralName] | None = None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
                         x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return key, pem


def _manifest(name: str, pem: bytes, signer: str, usages: list[str], seconds: int | None = None) -> str:
    spec = {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": usages}
    if seconds is not None:
        spec["expirationSeconds"] = seconds
    return yaml.safe_dump({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                           "metadata": {"name": name}, "spec": spec})


def _csr(kubectl, name: str) -> dict:
    return json.loads(kubectl("get", "csr", name, "-o", "json").stdout)


def _issued(kubectl, name: str) -> x509.Certificate:
    csr = wait_until(lambda: (c := _csr(kubectl, name)).get("status", {}).get("certificate") and c,
                     what=f"{name}'s certificate")
    return x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))


def _failed(kubectl, name: str) -> dict:
    return wait_until(lambda: next((c for c in _csr(kubectl, name).get("status", {}).get("conditions", [])
                                    if c["type"] == "Failed"), None), what=f"{name} Failed")


def test_jane_gets_a_client_certificate_and_kubectl_knows_her(lks, kubectl, namespace, tmp_path: Path):
    key, pem = _request("jane", ("devs",))
    kubectl("create", "-f", "-", input=_manifest("jane", pem, "kubernetes.io/kube-apiserver-client",
                                                 ["client auth"], 3600))
    pending = _csr(kubectl, "jane")
    assert pending["spec"]["username"] == "masterclient"  # the requester, whatever the body says
    assert "status" not in pending or not pending["status"].get("certificate")
    assert "Pending" in kubectl("get", "csr", "jane").stdout

    kubectl("certificate", "approve", "jane")
    cert = _issued(kubectl, "jane")
    csr = _csr(kubectl, "jane")
    approved = next(c for c in csr["status"]["conditions"] if c["type"] == "Approved")
    assert approved["reason"] == "KubectlApprove" and approved["lastUpdateTime"] and approved["lastTransitionTime"]
    assert "Approved,Issued" in kubectl("get", "csr", "jane").stdout

    assert cert.subject.rfc4514_string() == "CN=jane,O=devs"
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # an hour asked for, backdated 5 minutes (under 8 h the end is not)
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life == datetime.timedelta(minutes=65)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.issuer == _admin_certificate(kubectl).issuer  # the cluster CA

    jane = _kubeconfig(lks, tmp_path, "jane", key, cert)
    who = json.loads(lks.kubectl("auth", "whoami", "-o", "json", kubeconfig=jane).stdout)
    assert who["status"]["userInfo"] == {"username": "jane", "groups": ["devs", "system:authenticated"]}

    # (in a namespace of its own: the tests share one lks up, and jane is everyone's example user)
    denied = lks.kubectl("get", "pods", "-n", namespace, kubeconfig=jane, check=False)
    assert denied.returncode != 0
    assert ('Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API '
            f'group "" in the namespace "{namespace}"') in denied.stderr
    kubectl("create", "rolebinding", "jane-view", "--clusterrole=view", "--user=jane", "-n", namespace)
    wait_until(lambda: lks.kubectl("get", "pods", "-n", namespace, kubeconfig=jane, check=False).returncode == 0,
               what="jane may list pods")


def _admin_certificate(kubectl) -> x509.Certificate:
    cfg = yaml.safe_load(kubectl("config", "view", "--raw", "-o", "yaml").stdout)
    return x509.load_pem_x509_certificate(base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"]))


def _kubeconfig(lks, tmp_path: Path, user: str, key, cert: x509.Certificate) -> Path:
    cfg = yaml.safe_load(lks.kubeconfig.read_text())
    cluster = cfg["clusters"][0]
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    out = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
           "users": [{"name": user, "user": {
               "client-certificate-data": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
               "client-key-data": base64.b64encode(key_pem).decode()}}],
           "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
           "current-context": user}
    path = tmp_path / f"{user}.yaml"
    path.write_text(yaml.safe_dump(out))
    return path


def test_the_signers_refuse_what_their_rules_forbid(kubectl):
    """A client certificate asking for server auth, a kubelet client without system:nodes: each
    approved, then Failed by its signer with upstream's reason and words, and no certificate."""
    _, pem = _request("svc", ("devs",))
    kubectl("create", "-f", "-", input=_manifest("bad-usage", pem, "kubernetes.io/kube-apiserver-client",
                                                 ["client auth", "server auth"]))
    _, pem = _request("system:node:n1", ("devs",))
    kubectl("create", "-f", "-", input=_manifest("bad-kubelet", pem, "kubernetes.io/kube-apiserver-client-kubelet",
                                                 ["digital signature", "client auth"]))
    kubectl("certificate", "approve", "bad-usage", "bad-kubelet")
    failed = _failed(kubectl, "bad-usage")
    assert failed["reason"] == "SignerValidationFailure" and failed["status"] == "True"
    assert failed["message"] == "invalid usage for client certificate: server auth"
    assert _failed(kubectl, "bad-kubelet")["message"] == "subject organization is not system:nodes"
    for name in ("bad-usage", "bad-kubelet"):
        csr = _csr(kubectl, name)
        assert not csr["status"].get("certificate")
        assert "Approved,Failed" in kubectl("get", "csr", name).stdout


def test_kubelet_certificates_and_the_ten_minute_floor(kubectl):
    """A node's client certificate is approved by csrapproving (AutoApproved) and signed; a
    kubelet serving certificate needs approval and keeps its DNS and IP names; 600 s asked is
    600 s given (the floor), not backdated."""
    _, pem = _request("system:node:n1", ("system:nodes",))
    kubectl("create", "-f", "-", input=_manifest("node-client", pem, "kubernetes.io/kube-apiserver-client-kubelet",
                                                 ["digital signature", "client auth"], 600))
    cert = _issued(kubectl, "node-client")
    approved = next(c for c in _csr(kubectl, "node-client")["status"]["conditions"] if c["type"] == "Approved")
    assert approved["reason"] == "AutoApproved"
    assert approved["message"] == "Auto approving kubelet client certificate after SubjectAccessReview."
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(minutes=15)
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature and not key_usage.value.key_encipherment

    sans = [x509.DNSName("n1.example"), x509.IPAddress(ipaddress.ip_address("10.1.2.3"))]
    _, pem = _request("system:node:n1", ("system:nodes",), sans)
    kubectl("create", "-f", "-", input=_manifest("node-serving", pem, "kubernetes.io/kubelet-serving",
                                                 ["digital signature", "key encipherment", "server auth"]))
    assert "Pending" in kubectl("get", "csr", "node-serving").stdout  # never approved automatically
    kubectl("certificate", "approve", "node-serving")
    cert = _issued(kubectl, "node-serving")
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value == \
        x509.SubjectAlternativeName(sans)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    # a year by default (the CA's ten years do not cap it), less the 5 minutes of backdating
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=365)


def test_denied_requests_stay_unsigned_and_masters_are_refused(kubectl):
    _, pem = _request("mallory", ("devs",))
    kubectl("create", "-f", "-", input=_manifest("to-deny", pem, "kubernetes.io/kube-apiserver-client",
                                                 ["client auth"]))
    kubectl("certificate", "deny", "to-deny")
    assert "Denied" in kubectl("get", "csr", "to-deny").stdout
    again = kubectl("certificate", "approve", "to-deny", check=False)
    assert again.returncode != 0 and 'certificate signing request "to-deny" is already Denied' in again.stderr
    assert not _csr(kubectl, "to-deny")["status"].get("certificate")

    _, pem = _request("root", ("system:masters",))
    res = kubectl("create", "-f", "-", check=False, input=_manifest(
        "masters", pem, "kubernetes.io/kube-apiserver-client", ["client auth"]))
    assert res.returncode != 0
    assert ('certificatesigningrequests.certificates.k8s.io "masters" is forbidden: use of '
            'kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed') in res.stderr


def test_approving_needs_the_approve_verb_on_the_signer(kubectl):
    _, pem = _request("eve", ("devs",))
    kubectl("create", "-f", "-", input=_manifest("eve", pem, "kubernetes.io/kube-apiserver-client", ["client auth"]))
    kubectl("create", "clusterrole", "csr-approver", "--verb=get,list,update",
            "--resource=certificatesigningrequests,certificatesigningrequests/approval")
    kubectl("create", "clusterrolebinding", "bob-approves", "--clusterrole=csr-approver", "--user=bob")
    res = kubectl("certificate", "approve", "eve", "--as=bob", check=False)
    assert res.returncode != 0
    assert ('certificatesigningrequests.certificates.k8s.io "eve" is forbidden: user not permitted to approve '
            'requests with signerName "kubernetes.io/kube-apiserver-client"') in res.stderr
    # as the certificates docs grant it (kubectl create clusterrole refuses `signers`: no such resource is served)
    kubectl("create", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "signer-approver"},
        "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
                   "resourceNames": ["kubernetes.io/*"]}]}))
    kubectl("create", "clusterrolebinding", "bob-signer", "--clusterrole=signer-approver", "--user=bob")
    wait_until(lambda: kubectl("certificate", "approve", "eve", "--as=bob", check=False).returncode == 0,
               what="bob may approve")
    _issued(kubectl, "eve")
