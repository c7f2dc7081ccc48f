"""The OpenAPI operations of a group-version: for each served resource, the paths, operations,
parameters, bodies and responses kube-apiserver's installer publishes (`listCoreV1NamespacedPod`,
`patchAppsV1NamespacedDeploymentScale`, the deprecated `/watch/` paths, connect subresources).

Clients read these: kubectl's field-validation check looks for a PATCH operation carrying the
kind's `x-kubernetes-group-version-kind` and a `fieldValidation` query parameter, `kubectl
explain` finds a resource's kind through the GVK of its operations, and client-side apply asks
whether PATCH accepts strategic merge patches. Operations are built once in a neutral form and
rendered as OpenAPI 3.0 or Swagger 2.0; `lks.kube.openapi` assembles the documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lks.kube.catalog import ResourceType
from lks.kube.openapi_defs import V2_PREFIX, V3_PREFIX, list_schema_name

Node = dict[str, Any]
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS, DELETE_OPTIONS, PATCH, WATCH_EVENT = (_META + n for n in ("Status", "DeleteOptions", "Patch", "WatchEvent"))
RESOURCE_LIST = _META + "APIResourceList"

_JSON, _YAML, _PB = "application/json", "application/yaml", "application/vnd.kubernetes.protobuf"
_OBJECT = (_JSON, _YAML, _PB)
_STREAM = (*_OBJECT, _JSON + ";stream=watch", _PB + ";stream=watch")
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")
# CRDs take no strategic merge patch; kubectl's client-side apply reads that off this list
_CUSTOM_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")

# Resources whose DELETE answers with the deleted object rather than a Status (ReturnDeletedObject).
_RETURNS_DELETED = {("", "pods"), ("", "podtemplates"), ("", "persistentvolumes"), ("", "persistentvolumeclaims"),
                    ("", "resourcequotas"), ("", "serviceaccounts"), ("", "services")}

_SEE_RV = ("See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details."
           "\n\nDefaults to unset")
# Query parameters and their upstream descriptions, by name: (type, description).
_QUERY: dict[str, tuple[str, str]] = {
    "allowWatchBookmarks": ("boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored."),
    "continue": ("string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications."),
    "dryRun": ("string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
    "force": ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned."),
    "pretty": ("string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
    "resourceVersion": ("string", "resourceVersion sets a constraint on what resource versions a request may be served from. " + _SEE_RV),
    "resourceVersionMatch": ("string", "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set " + _SEE_RV),
    "sendInitialEvents": ("boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
    "watch": ("boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
    # pods/log (PodLogOptions)
    "follow": ("boolean", "Follow the log stream of the pod. Defaults to false."),
    "insecureSkipTLSVerifyBackend": ("boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.  This will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data coming from the real kubelet)."),
    "limitBytes": ("integer", "If set, the number of bytes to read from the server before terminating the log output. This may not display a complete final line of logging, and may return slightly more or slightly less than the specified limit."),
    "previous": ("boolean", "Return previous terminated container logs. Defaults to false."),
    "sinceSeconds": ("integer", "A relative time in seconds before the current time from which to show logs. If this value precedes the time a pod was started, only logs since the pod start will be returned. If this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be specified."),
    "tailLines": ("integer", "If set, the number of lines from the end of the logs to show. If not specified, logs are shown from the creation of the container or sinceSeconds or sinceTime"),
    "timestamps": ("boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
    "ports": ("integer", "List of ports to forward Required when using WebSockets"),
    "command": ("string", "Command is the remote command to execute. argv array. Not executed within a shell."),
}
_PATCH_FIELD_MANAGER = _QUERY["fieldManager"][1] + (
    " This field is required for apply requests (application/apply-patch) but optional for non-apply patch "
    "types (JsonPatch, MergePatch, StrategicMergePatch).")
# Parameters that differ by subresource: (name, type, description).
_CONNECT: dict[str, list[tuple[str, str, str]]] = {
    "log": [("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod.")],
    "exec": [("container", "string", "Container in which to execute the command. Defaults to only container if there is only one container in the pod."),
             ("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
             ("stdin", "boolean", "Redirect the standard input stream of the pod for this call. Defaults to false."),
             ("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
             ("tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.")],
    "attach": [("container", "string", "The container in which to execute the command. Defaults to only container if there is only one container in the pod."),
               ("stderr", "boolean", "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true."),
               ("stdin", "boolean", "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false."),
               ("stdout", "boolean", "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true."),
               ("tty", "boolean", "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false.")],
}
_PROXY_PATH = {
    "Pod": "Path is the URL path to use for the current proxy request to pod.",
    "Node": "Path is the URL path to use for the current proxy request to node.",
    "Service": "Path is the part of URLs that include service endpoints, suffixes, and parameters to use for the current proxy request to service. For example, the whole request URL is http://localhost/api/v1/namespaces/kube-system/services/elasticsearch-logging/_search?q=user:kimchy. Path is _search?q=user:kimchy.",
}
_LIST = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE = ("dryRun", "fieldManager", "fieldValidation")
_LIST_OPTIONS_IN_DELETE = ("continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
                           "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_CONNECT_METHODS = {"get": "GET", "create": "POST", "update": "PUT", "delete": "DELETE", "patch": "PATCH"}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" or "path"
    type: str
    description: str
    required: bool = False


@dataclass
class Operation:
    method: str  # lower-case HTTP method
    verb: str  # operationId prefix: read, list, create, replace, patch, delete, watch, connect, get
    name: str  # operationId after the verb and group-version, e.g. "NamespacedDeploymentScale"
    description: str
    action: str | None  # x-kubernetes-action
    gvk: dict[str, str] | None
    params: list[Param] = field(default_factory=list)
    body: str | None = None  # definition name of the request body
    body_types: tuple[str, ...] = ("*/*",)
    body_required: bool = False
    responses: list[tuple[str, str, str | None]] = field(default_factory=list)  # code, text, schema
    produces: tuple[str, ...] = _OBJECT


def query(name: str, description: str | None = None) -> Param:
    kind, text = _QUERY[name]
    return Param(name, "query", kind, description or text)


def _article(noun: str) -> str:
    """endpoints.GetArticleForNoun: " a ", " an ", or " " before plurals."""
    if noun.endswith("s") and not noun.endswith("ss"):
        return " "
    return " an " if noun[:1].lower() in "aeiou" else " a "


def operation_prefix(group: str, version: str) -> tuple[str, str]:
    """("AppsV1", "apps_v1"): the operationId infix and the tag of a group-version."""
    trimmed = group.removesuffix(".k8s.io") if group else "core"
    return _valid_id(trimmed, True) + _valid_id(version, True), f"{_valid_id(trimmed, False)}_{_valid_id(version, False)}"


def _valid_id(s: str, capitalize: bool) -> str:
    """apiserver's ToValidOperationID: drop separators and capitalize the letter after each."""
    out = []
    for i, ch in enumerate(s):
        if ch.isalpha() or ch == "_" or (i and ch.isdigit()):
            out.append(ch.upper() if capitalize else ch)
            capitalize = False
        else:
            capitalize = True
    return "".join(out)


class Builder:
    """Builds the paths of resource types against one catalog's definitions: `schema_of` maps a
    (group, version, kind) to its definition name, `delete_options` is the DeleteOptions
    definition (its fields are DELETE's query parameters, so they follow the version)."""

    def __init__(self, schema_of: dict[tuple[str, str, str], str], delete_options: Node | None):
        self.schema_of = schema_of
        props = (delete_options or {}).get("properties") or {}
        self.delete_params = [
            Param(name, "query", _scalar(prop), prop.get("description", ""))
            for name, prop in props.items() if name not in ("apiVersion", "kind", "preconditions", "dryRun")]

    def resource(self, rt: ResourceType, custom: bool) -> dict[str, list[Operation]]:
        """Every path and operation one resource type serves, keyed by path."""
        base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        kind, ns = rt.kind, "Namespaced" if rt.namespaced else ""
        scope = f"/namespaces/{{namespace}}/{rt.resource}" if rt.namespaced else f"/{rt.resource}"
        coll, item = base + scope, base + scope + "/{name}"
        gvk = {"group": rt.group, "kind": kind, "version": rt.version}
        obj = rt.schema_name
        lst = list_schema_name(obj, rt.list_kind) if obj else None
        media = _Media(custom)
        verbs = set(rt.verbs)
        out: dict[str, list[Operation]] = {}

        def add(path: str, op: Operation, name_of: str = kind) -> None:
            if "{name}" in path:
                op.params.insert(0, Param("name", "path", "string", f"name of the {name_of}", True))
            if "{namespace}" in path:
                op.params.insert(0, Param("namespace", "path", "string",
                                          "object name and auth scope, such as for teams and projects", True))
            if op.verb != "connect":
                op.params.append(query("pretty"))
            out.setdefault(path, []).append(op)

        if "list" in verbs:
            what = "list or watch" if "watch" in verbs else "list"
            lists = [(coll, ns + kind)] + ([(f"{base}/{rt.resource}", kind + "ForAllNamespaces")] if ns else [])
            for path, name in lists:
                add(path, Operation("get", "list", name, f"{what} objects of kind {kind}", "list", gvk,
                                    [query(p) for p in _LIST], responses=[("200", "OK", lst)], produces=media.stream))
        if "watch" in verbs:
            listdoc = (f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter "
                       "with a list operation instead.")
            onedoc = (f"watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a "
                      "list operation instead, filtered to a single item with the 'fieldSelector' parameter.")
            watches = [(f"{base}/watch{scope}", f"{ns}{kind}List", listdoc, "watchlist"),
                       (f"{base}/watch{scope}/{{name}}", ns + kind, onedoc, "watch")]
            if rt.namespaced:
                watches.append((f"{base}/watch/{rt.resource}", f"{kind}ListForAllNamespaces", listdoc, "watchlist"))
            for path, name, doc, action in watches:
                add(path, Operation("get", "watch", name, doc, action, gvk, [query(p) for p in _LIST],
                                    responses=[("200", "OK", WATCH_EVENT)], produces=media.stream))
        if "create" in verbs:
            add(coll, _create(ns + kind, f"create{_article(kind)}{kind}", gvk, obj, media))
        if "deletecollection" in verbs:
            params = [query(p) for p in ("dryRun", *_LIST_OPTIONS_IN_DELETE)] + self.delete_params
            add(coll, Operation("delete", "delete", "Collection" + ns + kind, f"delete collection of {kind}",
                                "deletecollection", gvk, params, DELETE_OPTIONS, media.writes, False,
                                [("200", "OK", STATUS)], media.produces))
        deleted = obj if (rt.group, rt.resource) in _RETURNS_DELETED and not custom else STATUS
        for op in self._item(kind, ns, "", gvk, obj, verbs, deleted, media):
            add(item, op)
        for sub in rt.subresources.values():
            sub_gvk = {"group": sub.group, "kind": sub.kind, "version": sub.version}
            sub_obj = self.schema_of.get((sub.group, sub.version, sub.kind))
            for path, op in self._subresource(item, kind, ns, sub.name, sub_gvk, sub_obj, set(sub.verbs), media):
                add(path, op, sub.kind)
        return out

    def _item(self, kind: str, ns: str, sub: str, gvk: Node, obj: str | None, verbs: set[str],
              deleted: str | None, media: _Media) -> list[Operation]:
        title = sub.title() if sub else ""
        of = f"{sub} of the specified " if sub else "the specified "
        ops = []
        if "get" in verbs:
            ops.append(Operation("get", "read", ns + kind + title, f"read {of}{kind}", "get", gvk,
                                 responses=[("200", "OK", obj)], produces=media.produces))
        if "update" in verbs:
            ops.append(Operation("put", "replace", ns + kind + title, f"replace {of}{kind}", "put", gvk,
                                 [query(p) for p in _WRITE], obj, media.writes, True,
                                 [("200", "OK", obj), ("201", "Created", obj)], media.produces))
        if "delete" in verbs:
            ops.append(Operation("delete", "delete", ns + kind + title, f"delete{_article(kind)}{kind}", "delete",
                                 gvk, [query("dryRun"), *self.delete_params], DELETE_OPTIONS, media.writes, False,
                                 [("200", "OK", deleted), ("202", "Accepted", deleted)], media.produces))
        if "patch" in verbs:
            params = [query("dryRun"), query("fieldManager", _PATCH_FIELD_MANAGER), query("fieldValidation"),
                      query("force")]
            ops.append(Operation("patch", "patch", ns + kind + title, f"partially update {of}{kind}", "patch", gvk,
                                 params, PATCH, media.patches, True,
                                 [("200", "OK", obj), ("201", "Created", obj)], media.produces))
        return ops

    def _subresource(self, item: str, kind: str, ns: str, sub: str, gvk: Node, obj: str | None, verbs: set[str],
                     media: _Media) -> list[tuple[str, Operation]]:
        path, name = f"{item}/{sub}", ns + kind + sub.title()
        if sub == "log":
            params = [*(Param(n, "query", t, d) for n, t, d in _CONNECT["log"]),
                      *(query(p) for p in ("follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous",
                                           "sinceSeconds", "tailLines", "timestamps"))]
            return [(path, Operation("get", "read", name, f"read {sub} of the specified {kind}", "get", gvk,
                                     params, responses=[("200", "OK", "string")],
                                     produces=("text/plain", _JSON, _YAML, _PB)))]
        if gvk["kind"].endswith("Options"):  # exec, attach, portforward, proxy: streaming "connect" handlers
            return _connect(path, name, kind, sub, gvk, verbs)
        if verbs == {"create"}:  # binding, eviction, token
            return [(path, _create(name, f"create {sub} of{_article(kind)}{kind}", gvk, obj, media))]
        return [(path, op) for op in self._item(kind, ns, sub, gvk, obj, verbs - {"delete"}, None, media)]


class _Media:
    """The media types of a resource's operations: built-ins also speak protobuf and strategic
    merge patch; custom resources take JSON and YAML, and no strategic merge patch."""

    def __init__(self, custom: bool):
        self.produces = (_JSON, _YAML) if custom else _OBJECT
        self.stream = self.produces if custom else _STREAM
        self.writes = (_JSON, _YAML) if custom else ("*/*",)
        self.patches = _CUSTOM_PATCH_TYPES if custom else _PATCH_TYPES


def _create(name: str, doc: str, gvk: Node, obj: str | None, media: _Media) -> Operation:
    return Operation("post", "create", name, doc, "post", gvk, [query(p) for p in _WRITE], obj, media.writes, True,
                     [("200", "OK", obj), ("201", "Created", obj), ("202", "Accepted", obj)], media.produces)


def _connect(path: str, name: str, kind: str, sub: str, gvk: Node, verbs: set[str]) -> list[tuple[str, Operation]]:
    params = [Param(n, "query", t, d) for n, t, d in _CONNECT.get(sub, ())]
    if sub == "portforward":
        params.append(query("ports"))
    elif sub == "exec":
        params.append(query("command"))
    elif sub == "proxy":
        params.append(Param("path", "query", "string", _PROXY_PATH.get(kind, _PROXY_PATH["Pod"])))
    methods = [_CONNECT_METHODS[v] for v in ("get", "update", "create", "delete") if v in verbs]
    variants = [("", path, [])]
    if sub == "proxy":
        methods += ["OPTIONS", "HEAD"] + (["PATCH"] if "patch" in verbs else [])
        variants.append(("WithPath", path + "/{path}", [Param("path", "path", "string", "path to the resource", True)]))
    return [(at, Operation(m.lower(), "connect", m.title() + name + suffix, f"connect {m} requests to {sub} of {kind}",
                           "connect", gvk, [*params, *extra], responses=[("200", "OK", "string")], produces=("*/*",)))
            for suffix, at, extra in variants for m in methods]


def _scalar(prop: Node) -> str:
    kind = prop.get("type")
    kind = next((t for t in kind if t != "null"), "string") if isinstance(kind, list) else kind
    return kind if kind in ("integer", "boolean") else "string"


def discovery(verb_name: str, doc: str, schema: str) -> Operation:
    """A discovery endpoint (`/apis/apps/v1/` and friends): no action, no GVK."""
    return Operation("get", "get", verb_name, doc, None, None, responses=[("200", "OK", schema)],
                     body_types=_OBJECT)


def render(paths: dict[str, list[Operation]], infix: str, tag: str, v3: bool) -> dict[str, Node]:
    """The `paths` object of a document. Parameters every operation of a path shares move to the
    path, as kube-openapi does; parameters are sorted by name."""
    out: dict[str, Node] = {}
    for path in sorted(paths):
        ops = paths[path]
        common = [p for p in ops[0].params if all(p in op.params for op in ops[1:])]
        item: Node = {}
        for op in ops:
            item[op.method] = _operation(op, [p for p in op.params if p not in common], infix, tag, v3)
        if common:
            item["parameters"] = [_param(p, v3) for p in sorted(common, key=_param_key)]
        out[path] = item
    return out


def _param_key(p: Param) -> tuple[str, str]:
    return p.name, p.where


def _param(p: Param, v3: bool) -> Node:
    if v3:
        node: Node = {"description": p.description, "in": p.where, "name": p.name}
        if p.required:
            node["required"] = True
        node["schema"] = {"type": p.type, "uniqueItems": True}
        return node
    node = {"uniqueItems": True, "type": p.type, "description": p.description, "name": p.name, "in": p.where}
    if p.required:
        node["required"] = True
    return node


def _schema_ref(name: str | None, prefix: str) -> Node | None:
    if name is None:
        return None
    return {"type": "string"} if name == "string" else {"$ref": prefix + name}


def _operation(op: Operation, params: list[Param], infix: str, tag: str, v3: bool) -> Node:
    prefix = V3_PREFIX if v3 else V2_PREFIX
    node: Node = {"description": op.description}
    if not v3:
        node["consumes"] = list(op.body_types)
        node["produces"] = list(op.produces)
        node["schemes"] = ["https"]
        node["tags"] = [tag]
    node["operationId"] = f"{op.verb}{infix}{op.name}"
    body = _schema_ref(op.body, prefix)
    rendered = [_param(p, v3) for p in sorted(params, key=_param_key)]
    if not v3 and body is not None:
        rendered.insert(0, {"name": "body", "in": "body", **({"required": True} if op.body_required else {}),
                            "schema": body})
    if rendered:
        node["parameters"] = rendered
    if v3 and body is not None:
        node["requestBody"] = {"content": {t: {"schema": body} for t in sorted(op.body_types)}}
        if op.body_required:
            node["requestBody"]["required"] = True
    responses: Node = {}
    for code, text, schema in op.responses:
        ref = _schema_ref(schema, prefix)
        if ref is None:
            responses[code] = {"description": text}
        elif v3:
            responses[code] = {"content": {t: {"schema": ref} for t in sorted(op.produces)}, "description": text}
        else:
            responses[code] = {"description": text, "schema": ref}
    responses["401"] = {"description": "Unauthorized"}
    node["responses"] = responses
    if v3:
        node["tags"] = [tag]
    if op.action:
        node["x-kubernetes-action"] = op.action
    if op.gvk:
        node["x-kubernetes-group-version-kind"] = dict(op.gvk)
    return node


def schema_names(paths: dict[str, list[Operation]]) -> set[str]:
    """The definitions the operations refer to: the roots of a document's components."""
    return {n for ops in paths.values() for op in ops for n in (op.body, *(s for _, _, s in op.responses))
            if n and n != "string"}
