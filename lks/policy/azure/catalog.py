"""Azure Policy's built-in Kubernetes definitions and initiatives, as ARM shows them.

`builtins.json` holds the catalog's data as Azure publishes it (display names, ids, descriptions,
parameters with their types, allowed values and defaults, and `policyRule.then.details`): the 24
most-used `Microsoft.Kubernetes.Data` definitions and the two pod security initiatives. A
definition's `templateInfo` points at a ConstraintTemplate on store.policy.core.windows.net, which
lks cannot reach: the URL stays for display, and `template` answers with lks's own template for it
(`templates/<name>.yaml`: our Rego, Azure's kind names). A custom definition carries its template
inline (`templateInfo.sourceType: Base64Encoded`). `lks.policy.azure.parameters` checks and
resolves an assignment's parameters against these; `lks.arm.policy` serves them.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
from pathlib import Path
from typing import Any

from lks import safeyaml

Doc = dict[str, Any]
DEFINITION_TYPE = "Microsoft.Authorization/policyDefinitions"
SET_TYPE = "Microsoft.Authorization/policySetDefinitions"
KUBERNETES_MODE = "Microsoft.Kubernetes.Data"
_HERE = Path(__file__).parent
_STORE_URL = "https://store.policy.core.windows.net/kubernetes/"


class TemplateError(ValueError):
    """A definition's template cannot be read (bad base64, not YAML, not a ConstraintTemplate)."""


@functools.cache
def _data() -> dict[str, list[Doc]]:
    return json.loads((_HERE / "builtins.json").read_text())


def _document(entry: Doc, type_: str, collection: str) -> Doc:
    return {"properties": copy.deepcopy(entry["properties"]),
            "id": f"/providers/Microsoft.Authorization/{collection}/{entry['name']}",
            "type": type_, "name": entry["name"]}


def definitions() -> list[Doc]:
    """Every built-in definition (fresh copies, free to change)."""
    return [_document(e, DEFINITION_TYPE, "policyDefinitions") for e in _data()["policyDefinitions"]]


def set_definitions() -> list[Doc]:
    return [_document(e, SET_TYPE, "policySetDefinitions") for e in _data()["policySetDefinitions"]]


@functools.cache
def _by_name(collection: str) -> dict[str, Doc]:
    return {e["name"]: e for e in _data()[collection]}


def definition(name: str) -> Doc | None:
    """The built-in definition named `name` (its GUID, any case; a fresh copy)."""
    entry = _by_name("policyDefinitions").get(name.lower())
    return _document(entry, DEFINITION_TYPE, "policyDefinitions") if entry else None


def set_definition(name: str) -> Doc | None:
    entry = _by_name("policySetDefinitions").get(name.lower())
    return _document(entry, SET_TYPE, "policySetDefinitions") if entry else None


def details(doc: Doc) -> Doc:
    """A definition's `policyRule.then.details` ({} when it has none)."""
    then = ((doc.get("properties") or {}).get("policyRule") or {}).get("then") or {}
    out = then.get("details")
    return out if isinstance(out, dict) else {}


def template_name(url: str) -> str | None:
    """The lks template standing for a store.policy.core.windows.net URL:
    `…/kubernetes/container-no-privilege/v2/template.yaml` → `container-no-privilege`."""
    if not url.lower().startswith(_STORE_URL):
        return None
    return url[len(_STORE_URL):].split("/", 1)[0] or None


@functools.cache
def _builtin_template(name: str) -> Doc | None:
    path = _HERE / "templates" / f"{name}.yaml"
    if not path.is_file():
        return None
    return safeyaml.load(path.read_text())


def template(doc: Doc) -> Doc | None:
    """The ConstraintTemplate a Kubernetes definition installs in a cluster (a fresh copy), or
    None for a definition that installs none. Raises `TemplateError` for inline content that is
    not a ConstraintTemplate."""
    info = details(doc).get("templateInfo")
    if not isinstance(info, dict):
        return None
    if str(info.get("sourceType", "")).lower() == "base64encoded":
        return decode(info.get("content"))
    name = template_name(str(info.get("url", "")))
    found = _builtin_template(name) if name else None
    return copy.deepcopy(found) if found else None


def decode(content: Any) -> Doc:
    """A Base64Encoded `templateInfo.content`: a ConstraintTemplate, checked only as far as its
    shape (`lks.policy.gatekeeper` compiles its code once it reaches a cluster)."""
    if not isinstance(content, str) or not content.strip():
        raise TemplateError("templateInfo.content must be a base64-encoded ConstraintTemplate")
    try:
        text = base64.b64decode(content, validate=True).decode()
        value = safeyaml.load(text)
    except (binascii.Error, UnicodeDecodeError) as err:
        raise TemplateError(f"templateInfo.content is not valid base64: {err}") from None
    except safeyaml.YAMLError as err:
        raise TemplateError(f"templateInfo.content is not valid YAML: {safeyaml.message(err)}") from None
    if not isinstance(value, dict) or value.get("kind") != "ConstraintTemplate" \
            or not str(value.get("apiVersion", "")).startswith("templates.gatekeeper.sh/"):
        raise TemplateError("templateInfo.content must be a ConstraintTemplate (templates.gatekeeper.sh)")
    kind = (((value.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names", {}).get("kind")
    if not isinstance(kind, str) or not kind:
        raise TemplateError("the ConstraintTemplate has no spec.crd.spec.names.kind")
    if not isinstance((value.get("spec") or {}).get("targets"), list):
        raise TemplateError("the ConstraintTemplate has no spec.targets")
    return value
