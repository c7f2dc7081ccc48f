"""Admission webhook configuration rules of upstream's `pkg/apis/admissionregistration/validation`
(v1): fully qualified, distinct webhook names, known enums (operations, failure, match, side
effects, reinvocation, scope), a 1-30 s timeout, exactly one of `url` (https) and `service`, and
an AdmissionReview version the server speaks. Operators' webhooks (cert-manager, OPA ...) are
checked here the way kube-apiserver checks them before lks calls them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.typevalidation import field
from lks.kube.typevalidation.common import get, is_port_num, items, label_selector, qualified_name

_OPERATIONS = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]  # sets.List: sorted
_FAILURE = ["Fail", "Ignore"]
_MATCH = ["Equivalent", "Exact"]
_NO_SIDE_EFFECTS = ["None", "NoneOnDryRun"]
_REINVOCATION = ["IfNeeded", "Never"]
_SCOPES = ["*", "Cluster", "Namespaced"]
_REVIEW_VERSIONS = ["v1", "v1beta1"]
_URL_FORM = "; desired format: https://host[/path]"


def _fully_qualified(name: str, path: str) -> list[Cause]:
    """`IsFullyQualifiedName`."""
    if not name:
        return [field.required(path)]
    name = name[:-1] if name.endswith(".") else name
    msgs = validation.dns_subdomain(name)
    if msgs:
        return [field.invalid(path, name, ",".join(msgs))]
    if len(name.split(".")) < 3:
        return [field.invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def _wildcard_list(values: list, path: str, what: str) -> list[Cause]:
    if len(values) > 1 and "*" in values:
        return [field.invalid(path, values, f"if '*' is present, must not specify other {what}")]
    return []


def _rule(rule: Any, path: str) -> list[Cause]:
    """`validateRuleWithOperations` (with subresources allowed)."""
    rule = rule if isinstance(rule, dict) else {}
    operations = items(rule, "operations")
    causes = [] if operations else [field.required(f"{path}.operations")]
    causes += _wildcard_list(operations, f"{path}.operations", "operations")
    causes += [field.not_supported(f"{path}.operations[{i}]", op, _OPERATIONS)
               for i, op in enumerate(operations) if op not in _OPERATIONS]
    groups, versions, resources = items(rule, "apiGroups"), items(rule, "apiVersions"), items(rule, "resources")
    if not groups:
        causes.append(field.required(f"{path}.apiGroups"))
    causes += _wildcard_list(groups, f"{path}.apiGroups", "API groups")
    if not versions:
        causes.append(field.required(f"{path}.apiVersions"))
    causes += _wildcard_list(versions, f"{path}.apiVersions", "API versions")
    causes += [field.required(f"{path}.apiVersions[{i}]") for i, v in enumerate(versions) if not v]
    if not resources:
        causes.append(field.required(f"{path}.resources"))
    causes += [field.required(f"{path}.resources[{i}]") for i, r in enumerate(resources) if not r]
    if len(resources) > 1 and "*/*" in resources:
        causes.append(field.invalid(f"{path}.resources", resources, "if '*/*' is present, must not specify other "
                                                                    "resources"))
    if "*" in resources and any(r and r != "*" and "/" not in r for r in resources):
        causes.append(field.invalid(f"{path}.resources", resources, "if '*' is present, must not specify other "
                                                                    "resources without subresources"))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        causes.append(field.not_supported(f"{path}.scope", scope, _SCOPES))
    return causes


def _url(url: str, path: str) -> list[Cause]:
    """`webhook.ValidateWebhookURL` with https required."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        return [field.required(path, f"url must be a valid URL: {err}{_URL_FORM}")]
    causes: list[Cause] = []
    if parts.scheme != "https":
        causes.append(field.invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    host = parts.netloc.rpartition("@")[2]
    if not host:
        causes.append(field.invalid(path, host, "host must be specified" + _URL_FORM))
    if "@" in parts.netloc:
        causes.append(field.invalid(path, parts.netloc.rpartition("@")[0], "user information is not permitted in the URL"))
    if parts.fragment:
        causes.append(field.invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        causes.append(field.invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return causes


def _webhook(hook: Any, path: str, mutating: bool) -> list[Cause]:
    hook = hook if isinstance(hook, dict) else {}
    causes = _fully_qualified(hook.get("name") or "", f"{path}.name")
    for i, rule in enumerate(items(hook, "rules")):
        causes += _rule(rule, f"{path}.rules[{i}]")
    for key, allowed in (("failurePolicy", _FAILURE), ("matchPolicy", _MATCH)):
        if hook.get(key) is not None and hook[key] not in allowed:
            causes.append(field.not_supported(f"{path}.{key}", hook[key], allowed))
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        causes.append(field.required(f"{path}.sideEffects", f"must specify one of {', '.join(_NO_SIDE_EFFECTS)}"))
    elif side_effects not in _NO_SIDE_EFFECTS:
        causes.append(field.not_supported(f"{path}.sideEffects", side_effects, _NO_SIDE_EFFECTS))
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        causes.append(field.invalid(f"{path}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 "
                                                                         "seconds"))
    for key in ("namespaceSelector", "objectSelector"):
        if hook.get(key) is not None:
            causes += label_selector(hook[key], f"{path}.{key}")
    if mutating and hook.get("reinvocationPolicy") is not None and hook["reinvocationPolicy"] not in _REINVOCATION:
        causes.append(field.not_supported(f"{path}.reinvocationPolicy", hook["reinvocationPolicy"], _REINVOCATION))
    causes += _match_conditions(items(hook, "matchConditions"), f"{path}.matchConditions")
    config = hook.get("clientConfig") if isinstance(hook.get("clientConfig"), dict) else {}
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        causes.append(field.required(f"{path}.clientConfig", "exactly one of url or service is required"))
    elif url is not None:
        causes += _url(url, f"{path}.clientConfig.url")
    else:
        causes += _service(service if isinstance(service, dict) else {}, f"{path}.clientConfig.service")
    return causes


def _service(service: dict, path: str) -> list[Cause]:
    """`webhook.ValidateWebhookService`. Upstream passes the name where it declares the
    namespace and the other way round, so a missing name is reported on `namespace` and a
    missing namespace on `name`: kept, so the causes read as kube-apiserver's."""
    causes: list[Cause] = []
    if not service.get("namespace"):
        causes.append(field.required(f"{path}.name"))
    if not service.get("name"):
        causes.append(field.required(f"{path}.namespace"))
    port = get(service, "port", default=443)
    errs = is_port_num(port)
    if errs:
        causes.append(field.invalid(f"{path}.port", port, "port is not valid: " + ", ".join(errs)))
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return causes
    if url_path == "//":
        return [*causes, field.invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        causes.append(field.invalid(f"{path}.path", url_path, "must start with a '/'"))
    rest = url_path[1:]
    rest = rest[:-1] if rest.endswith("/") else rest
    for i, step in enumerate(rest.split("/")):
        if not step:
            causes.append(field.invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        causes += [field.invalid(f"{path}.path", url_path, f"segment[{i}]: {m}") for m in validation.dns_subdomain(step)]
    return causes


def _match_conditions(given: list, path: str) -> list[Cause]:
    """`validateMatchConditions`: at most 64, each with a qualified, distinct name and an
    expression that compiles with the names a webhook's conditions have (no `params`)."""
    from lks.kube.webhooks import conditions  # here: the CEL library imports this package
    causes = [field.too_many(path, len(given), 64)] if len(given) > 64 else []
    names: set[str] = set()
    for i, cond in enumerate(given):
        cond = cond if isinstance(cond, dict) else {}
        expression, name = cond.get("expression") or "", cond.get("name") or ""
        if not expression.strip():
            causes.append(field.required(f"{path}[{i}].expression"))
        elif (why := conditions.compile_error(expression.strip())) is not None:
            causes.append(field.invalid(f"{path}[{i}].expression", expression.strip(), why))
        if not name:
            causes.append(field.required(f"{path}[{i}].name"))
        else:
            causes += qualified_name(name, f"{path}[{i}].name")
            if name in names:
                causes.append(field.duplicate(f"{path}[{i}].name", name))
            names.add(name)
    return causes


def _review_versions(versions: list, path: str) -> list[Cause]:
    if not versions:
        return [field.required(path, f"must specify one of {', '.join(_REVIEW_VERSIONS)}")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        if version in seen:
            causes.append(field.invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        causes += [field.invalid(f"{path}[{i}]", version, m) for m in validation.dns1035_label(version)]
    if not seen & set(_REVIEW_VERSIONS):
        causes.append(field.invalid(path, versions, f"must include at least one of {', '.join(_REVIEW_VERSIONS)}"))
    return causes


def _configuration(obj: dict, mutating: bool) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, hook in enumerate(items(obj, "webhooks")):
        path = f"webhooks[{i}]"
        causes += _webhook(hook, path, mutating)
        causes += _review_versions(items(hook, "admissionReviewVersions"), f"{path}.admissionReviewVersions")
        name = get(hook, "name", default="")
        if name and name in names:
            causes.append(field.duplicate(f"{path}.name", name))
        names.add(name)
    return causes


def validate_validating_webhooks(obj: dict) -> list[Cause]:
    return _configuration(obj, mutating=False)


def validate_mutating_webhooks(obj: dict) -> list[Cause]:
    return _configuration(obj, mutating=True)
