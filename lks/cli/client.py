"""The management API's client for the `lks` command: synchronous HTTPS with the service's CA
and bearer token from `$LKS_HOME/config.json`, ARM errors turned into `ServiceError`, and
ARM's long-running operations followed to their end (`Azure-AsyncOperation` status or
`Location` results, at the pace the server's `Retry-After` allows; nothing to follow when the
service answered with the final state, as it does for an operation that ends within the request).

The transport is one injectable function, so the command modules (`lks.cli.commands.*`) can be
tested against a fake server; `lks.cli.output` shows what they return.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lks.cli.output import CLIError, Spinner

RESOURCES_API = "2025-04-01"  # Microsoft.Resources (resource groups)
CONTAINER_SERVICE_API = "2026-08-01"  # Microsoft.ContainerService
PROVIDER = "Microsoft.ContainerService"
TERMINAL = ("Succeeded", "Failed", "Canceled")
FIRST_POLL = 0.2  # seconds: lks operations are quick, so look early, then back off to Retry-After
DEFAULT_RETRY_AFTER = 30.0  # azure-core's polling interval when the server gives none


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any = None


Transport = Callable[[str, str, dict[str, str], bytes | None], tuple[int, dict[str, str], bytes]]


class ServiceError(CLIError):
    """An ARM error answer (`{"error": {"code", "message"}}`), printed as az prints
    azure-core's HttpResponseError; a 404 exits 3, as az's ResourceNotFoundError does."""

    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 details: list[dict[str, Any]] | None = None):
        self.status, self.code, self.message, self.target = status, code, message, target
        self.details = details or []
        self.exit_code = 3 if status == 404 else 1
        super().__init__(self.text())

    @classmethod
    def from_body(cls, status: int, body: Any) -> ServiceError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(status, "Unknown", f"Operation returned an invalid status code (HTTP {status})")
        return cls(status, str(error.get("code", "Unknown")), str(error.get("message", "")),
                   target=error.get("target"), details=error.get("details"))

    def text(self) -> str:
        # azure-core ODataV4Format.__str__: "(code) message" then the detail lines
        lines = [f"({self.code}) {self.message}", f"Code: {self.code}", f"Message: {self.message}"]
        if self.target:
            lines.append(f"Target: {self.target}")
        if self.details:
            lines.append("Exception Details:")
            for d in self.details:
                lines.append(f"\t({d.get('code')}) {d.get('message')}\n\tCode: {d.get('code')}\n\t"
                             f"Message: {d.get('message')}")
        return "\n".join(lines)


@dataclass(slots=True)
class Config:
    endpoint: str
    token: str
    ca_file: str
    subscription_id: str

    @classmethod
    def load(cls, home: Path | None = None) -> Config:
        home = home or Path(os.environ.get("LKS_HOME") or Path.home() / ".lks")
        path = home / "config.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise CLIError(f"No lks service configuration at {path}. Run 'lks up' first (or set LKS_HOME).") from None
        except (OSError, ValueError) as err:
            raise CLIError(f"Cannot read {path}: {err}") from None
        try:
            return cls(raw["endpoint"].rstrip("/"), raw["token"], raw["ca_file"], raw["subscription_id"])
        except KeyError as err:
            raise CLIError(f"{path} lacks {err}.") from None


def urllib_transport(ca_file: str, timeout: float = 60.0) -> Transport:
    context = ssl.create_default_context(cafile=ca_file)

    def send(method: str, url: str, headers: dict[str, str], body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=context, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:  # 4xx/5xx still carry ARM's error body
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()
        except urllib.error.URLError as err:
            raise CLIError(f"Cannot reach the lks management API at {url.split('/subscriptions')[0]}: "
                           f"{err.reason}. Is 'lks up' running?") from None

    return send


@dataclass
class Client:
    """Requests against one subscription; `wait` follows long-running operations."""

    config: Config
    subscription: str = ""
    transport: Transport | None = None
    spinner: Spinner = field(default_factory=Spinner)

    def __post_init__(self) -> None:
        self.subscription = self.subscription or self.config.subscription_id
        if self.transport is None:
            self.transport = urllib_transport(self.config.ca_file)

    # -- paths --------------------------------------------------------------------------------

    def group_path(self, group: str = "") -> str:
        path = f"/subscriptions/{_q(self.subscription)}/resourcegroups"
        return f"{path}/{_q(group)}" if group else path

    def cluster_path(self, group: str, name: str = "") -> str:
        path = f"/subscriptions/{_q(self.subscription)}/resourceGroups/{_q(group)}/providers/{PROVIDER}/managedClusters"
        return f"{path}/{_q(name)}" if name else path

    def pool_path(self, group: str, cluster: str, pool: str = "") -> str:
        path = f"{self.cluster_path(group, cluster)}/agentPools"
        return f"{path}/{_q(pool)}" if pool else path

    def provider_path(self, rest: str) -> str:
        return f"/subscriptions/{_q(self.subscription)}/providers/{PROVIDER}/{rest}"

    # -- requests -----------------------------------------------------------------------------

    def request(self, method: str, path_or_url: str, *, api_version: str | None = None, body: Any = None,
                query: dict[str, str] | None = None) -> Response:
        """One request; `path_or_url` is a path under the endpoint or an absolute (polling) URL."""
        url = path_or_url if "://" in path_or_url else self.config.endpoint + path_or_url
        params = {**({"api-version": api_version} if api_version else {}), **(query or {})}
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        headers = {"Authorization": f"Bearer {self.config.token}", "Accept": "application/json",
                   "User-Agent": "lks-cli"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        assert self.transport is not None
        status, resp_headers, raw = self.transport(method, url, headers, data)
        try:
            parsed = json.loads(raw) if raw and raw.strip() else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        if status >= 400:
            raise ServiceError.from_body(status, parsed)
        return Response(status, resp_headers, parsed)

    def get(self, path: str, api_version: str = CONTAINER_SERVICE_API) -> Any:
        return self.request("GET", path, api_version=api_version).body

    def exists(self, path: str, api_version: str = CONTAINER_SERVICE_API) -> bool:
        try:
            self.request("GET", path, api_version=api_version)
        except ServiceError as err:
            if err.status == 404:
                return False
            raise
        return True

    def list(self, path: str, api_version: str = CONTAINER_SERVICE_API) -> list[Any]:
        """Every item of an ARM collection, following `nextLink`."""
        items: list[Any] = []
        url: str | None = path
        while url:
            body = self.request("GET", url, api_version=api_version if "://" not in url else None).body or {}
            items += body.get("value") or []
            url = body.get("nextLink")
        return items

    # -- long-running operations --------------------------------------------------------------

    def put(self, path: str, body: Any, *, no_wait: bool, api_version: str = CONTAINER_SERVICE_API) -> Any:
        """Create or update; with waiting, the resource once its operation has ended."""
        resp = self.request("PUT", path, api_version=api_version, body=body)
        if no_wait:
            return None
        if self.wait(resp) is None:
            return resp.body  # a synchronous PUT (resource groups)
        return self.get(path, api_version)  # ARM's final state of a PUT: GET the resource

    def delete(self, path: str, *, no_wait: bool, api_version: str = CONTAINER_SERVICE_API,
               query: dict[str, str] | None = None) -> None:
        self.wait(self.request("DELETE", path, api_version=api_version, query=query), no_wait=no_wait)

    def action(self, path: str, *, no_wait: bool, api_version: str = CONTAINER_SERVICE_API) -> None:
        """A POST action such as start or stop (az prints nothing after them)."""
        self.wait(self.request("POST", path, api_version=api_version), no_wait=no_wait)

    def wait(self, resp: Response, *, no_wait: bool = False) -> Response | None:
        """Follow the operation `resp` started; the final answer of its monitor, or None when there
        was nothing to follow. A Failed or Canceled operation raises its ARM error."""
        async_url = resp.headers.get("azure-asyncoperation")
        location = resp.headers.get("location")
        if no_wait or not (async_url or location) or resp.status not in (200, 201, 202):
            return None
        delay = FIRST_POLL
        try:
            while True:
                self.spinner.sleep(min(delay, _retry_after(resp)))
                delay *= 2
                if async_url:
                    resp = self.request("GET", async_url)
                    status = (resp.body or {}).get("status")
                    if status in TERMINAL:
                        if status != "Succeeded":
                            raise ServiceError.from_body(resp.status, resp.body)
                        return resp
                else:
                    resp = self.request("GET", location)
                    if resp.status != 202:
                        return resp
                    location = resp.headers.get("location") or location
        finally:
            self.spinner.clear()


def _retry_after(resp: Response) -> float:
    try:
        return max(0.0, float(resp.headers.get("retry-after", DEFAULT_RETRY_AFTER)))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")
