"""`lks get-token`: the exec credential plugin of an Entra-integrated cluster's user kubeconfig,
with kubelogin's `get-token` flags (`--server-id`, `--tenant-id`, `--client-id`, `--login`,
`--environment`, `--authority-host`, `--token-cache-dir`) and environment variables. It asks the
tenant's token endpoint (`<authority>/<tenant>/oauth2/v2.0/token`, lks's issuer) for an access
token for the server app with the principal's own credentials and prints the ExecCredential
kubectl reads (`client.authentication.k8s.io`, with `expirationTimestamp`).

Logins: `spn` (a client secret: `AAD_SERVICE_PRINCIPAL_CLIENT_ID`/`_SECRET` as kubelogin reads
them, or `AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`), `workloadidentity` (a federated token file:
`AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`) and `azurecli` (the token of the account the real
`az` is logged in with, `az account get-access-token`); `AAD_LOGIN_METHOD` overrides `--login`, as
kubelogin's does. lks has no users, so no device code. A token is
kept in the cache directory until five minutes before it expires, so kubectl's every run does
not log in again. Needs no `config.json`: it runs wherever the kubeconfig is used.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOGINS = ("devicecode", "interactive", "spn", "ropc", "msi", "azurecli", "azd", "workloadidentity",
          "azurepipelines")
PUBLIC_AUTHORITY = "https://login.microsoftonline.com/"  # what kubelogin's AzurePublicCloud means
_API = "client.authentication.k8s.io/v1beta1"
_MARGIN = 300  # a cached token is used while it has more than five minutes left
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class LoginError(Exception):
    pass


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("get-token", help="Get an Entra ID token for an Entra-integrated cluster (kubectl's exec "
                       "credential plugin, shaped like kubelogin get-token).")
    p.add_argument("--environment", "-e", default="AzurePublicCloud", help="Azure environment name.")
    p.add_argument("--server-id", required=True, help="AAD server application ID (the token's audience).")
    p.add_argument("--client-id", help="AAD client application ID; with --login spn, the service principal's.")
    p.add_argument("--tenant-id", "-t", help="AAD tenant ID.")
    p.add_argument("--login", "-l", default="devicecode", choices=LOGINS, help="Login method: spn or "
                   "workloadidentity here.")
    p.add_argument("--client-secret", help="The service principal's client secret (env "
                   "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET).")
    p.add_argument("--federated-token-file", help="Workload identity federated token file (env "
                   "AZURE_FEDERATED_TOKEN_FILE).")
    p.add_argument("--authority-host", help="The token issuer's host (env AZURE_AUTHORITY_HOST). Default: lks's "
                   "endpoint from $LKS_HOME/config.json, else the public cloud's.")
    p.add_argument("--token-cache-dir", default=str(Path("~/.kube/cache/kubelogin")),
                   help="Directory to cache tokens in.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        credential = get_token(args, dict(os.environ))
    except LoginError as err:
        sys.stderr.write(f"Error: failed to get token: {err}\n")
        return 1
    sys.stdout.write(json.dumps(credential) + "\n")
    return 0


def get_token(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The ExecCredential for `args`; raises LoginError."""
    exec_info = _exec_info(env)
    login = env.get("AAD_LOGIN_METHOD") or args.login  # kubelogin's override of the kubeconfig's --login
    if login == "azurecli":
        token, expiry = _azure_cli(args.server_id, args.tenant_id, env)
        return _credential(exec_info, token, expiry)
    tenant = args.tenant_id or env.get("AZURE_TENANT_ID")
    if not tenant:
        raise LoginError("tenant ID is required (--tenant-id)")
    form = _credentials(login, args, env)
    authority = (args.authority_host or env.get("AZURE_AUTHORITY_HOST") or _lks_endpoint(env)
                 or PUBLIC_AUTHORITY).rstrip("/")
    form.update(grant_type="client_credentials", scope=f"{args.server_id}/.default")
    cache = Path(args.token_cache_dir).expanduser() / f"lks-{_cache_key(authority, tenant, form)}.json"
    token, expiry = _cached(cache)
    if token is None:
        token, expiry = _request(f"{authority}/{urllib.parse.quote(tenant)}/oauth2/v2.0/token", form,
                                 _tls(exec_info, env, authority))
        _store(cache, token, expiry)
    return _credential(exec_info, token, expiry)


def _credential(exec_info: dict[str, Any], token: str, expiry: int) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"kind": "ExecCredential", "apiVersion": exec_info.get("apiVersion") or _API,
            "spec": {"interactive": False}, "status": {"expirationTimestamp": stamp, "token": token}}


def _azure_cli(server_id: str, tenant: str | None, env: dict[str, str]) -> tuple[str, int]:
    """kubelogin's azurecli login: the token of the account `az` is logged in with (az keeps
    its own cache), from `az account get-access-token --resource <server-id>`."""
    argv = ["az", "account", "get-access-token", "--resource", server_id, *(["--tenant", tenant] if tenant else []),
            "--output", "json"]
    try:
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LoginError(f"cannot run az: {err}") from None
    if res.returncode != 0:
        raise LoginError(res.stderr.strip() or f"az exited with {res.returncode}")
    try:
        body = json.loads(res.stdout)
        token = body["accessToken"]
        expiry = int(body["expires_on"]) if body.get("expires_on") else int(
            datetime.strptime(body["expiresOn"], "%Y-%m-%d %H:%M:%S.%f").timestamp())  # az's local time
    except (ValueError, KeyError, TypeError):
        raise LoginError("az account get-access-token answered no token") from None
    return token, expiry


def _credentials(login: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """The client credentials of the login method, from flags and kubelogin's variables."""
    if login == "spn":
        client = env.get("AAD_SERVICE_PRINCIPAL_CLIENT_ID") or env.get("AZURE_CLIENT_ID") or args.client_id
        secret = (env.get("AAD_SERVICE_PRINCIPAL_CLIENT_SECRET") or env.get("AZURE_CLIENT_SECRET")
                  or args.client_secret)
        if not client:
            raise LoginError("client ID is required: set AAD_SERVICE_PRINCIPAL_CLIENT_ID or --client-id")
        if not secret:
            raise LoginError("client secret is required: set AAD_SERVICE_PRINCIPAL_CLIENT_SECRET or --client-secret")
        return {"client_id": client, "client_secret": secret}
    if login == "workloadidentity":
        client = env.get("AZURE_CLIENT_ID") or args.client_id
        path = env.get("AZURE_FEDERATED_TOKEN_FILE") or args.federated_token_file
        if not client or not path:
            raise LoginError("workload identity needs AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE")
        try:
            assertion = Path(path).read_text().strip()
        except OSError as err:
            raise LoginError(f"cannot read the federated token file {path}: {err.strerror}") from None
        return {"client_id": client, "client_assertion": assertion, "client_assertion_type": _JWT_BEARER}
    raise LoginError(f"login method {login} is not available with lks: use --login spn (a service principal's "
                     "secret), workloadidentity (a federated token) or azurecli (az logged in to lks)")


def _request(url: str, form: dict[str, str], ctx: ssl.SSLContext) -> tuple[str, int]:
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), context=ctx, timeout=60) as r:
            body = json.load(r)
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read())
            message = f"{detail.get('error')}: {detail.get('error_description')}"
        except ValueError:
            message = f"HTTP {err.code}"
        raise LoginError(message) from None
    except (OSError, ValueError) as err:
        raise LoginError(f"{url}: {err}") from None
    token, lifetime = body.get("access_token"), body.get("expires_in")
    if not isinstance(token, str) or lifetime is None:
        raise LoginError("the token endpoint answered no access token")
    return token, int(time.time()) + int(lifetime)


def _exec_info(env: dict[str, str]) -> dict[str, Any]:
    """What kubectl passes an exec plugin (`KUBERNETES_EXEC_INFO`), or nothing."""
    try:
        info = json.loads(env.get("KUBERNETES_EXEC_INFO") or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _tls(exec_info: dict[str, Any], env: dict[str, str], authority: str) -> ssl.SSLContext:
    """Trust for the token endpoint: the cluster's CA when kubectl provides it (lks serves the
    endpoint and the clusters with one certificate), lks's CA for the service of $LKS_HOME, else
    the usual bundles."""
    cluster = (exec_info.get("spec") or {}).get("cluster") or {}
    ca_data = cluster.get("certificate-authority-data")
    if ca_data:
        return ssl.create_default_context(cadata=base64.b64decode(ca_data).decode())
    config = _lks_config(env)
    if config.get("ca_file") and str(config.get("endpoint", "")).rstrip("/") == authority:
        return ssl.create_default_context(cafile=config["ca_file"])
    bundle = env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def _lks_config(env: dict[str, str]) -> dict[str, Any]:
    path = Path(env.get("LKS_HOME") or "~/.lks").expanduser() / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _lks_endpoint(env: dict[str, str]) -> str | None:
    return _lks_config(env).get("endpoint")


def _cache_key(authority: str, tenant: str, form: dict[str, str]) -> str:
    material = "\0".join((authority.lower(), tenant.lower(), *(f"{k}={form[k]}" for k in sorted(form))))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _cached(path: Path) -> tuple[str | None, int]:
    try:
        entry = json.loads(path.read_text())
        token, expiry = entry["token"], int(entry["expiresOn"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, 0
    if not isinstance(token, str) or expiry - time.time() <= _MARGIN:
        return None, 0
    return token, expiry


def _store(path: Path, token: str, expiry: int) -> None:
    """Keep the token for the next run (owner-only, as kubelogin's cache); a cache that cannot
    be written only costs a login."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"token": token, "expiresOn": expiry}, f)
        os.replace(tmp, path)
