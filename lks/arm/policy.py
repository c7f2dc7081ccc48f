"""Azure Policy on the management API: `Microsoft.Authorization/policyDefinitions` (the built-in
Kubernetes catalog at `/providers/…` and under a subscription, custom definitions at subscription
scope), `policySetDefinitions` (the built-in initiatives, custom ones at subscription scope checked by
`lks.policy.azure.initiatives`), `policyAssignments` at subscription,
resource group and resource scope, and `Microsoft.PolicyInsights/policyStates/latest` (query and
summarize) over the compliance states clusters report. Writes are synchronous, as ARM's are
(PUT 201, DELETE 200 or 204). Beyond ARM, POST `{assignmentId}/whatIf` lists what an assignment
(stored, or the PUT body of one to be) would find in violation in the clusters of its scope. The data lives in `lks.policy.azure`; Azure RBAC authorizes each
route from its path (`lks.arm.actions`: `Microsoft.Authorization/policyAssignments/write` …).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from lks.arm.app import Call, Route, json_response
from lks.arm.errors import ARMError, not_found
from lks.clock import iso8601
from lks.identity import rbac
from lks.policy.azure import assignments, catalog, initiatives, odata, parameters, states

if TYPE_CHECKING:
    from lks.arm.plane import ManagementPlane

Doc = dict[str, Any]
AUTHORIZATION = "Microsoft.Authorization"
INSIGHTS = "Microsoft.PolicyInsights"
# what az (2.91, its policy module and its older profiles) and the SDKs send
API_VERSIONS = ("2016-04-01", "2016-12-01", "2017-06-01-preview", "2018-03-01", "2018-05-01", "2019-01-01",
                "2019-06-01", "2019-09-01", "2020-03-01", "2020-09-01", "2021-06-01", "2022-06-01",
                "2023-04-01", "2024-04-01", "2024-05-01", "2025-01-01", "2025-03-01",
                "2026-06-01")
INSIGHTS_API_VERSIONS = ("2018-04-04", "2019-10-01", "2022-04-01", "2024-10-01")
ASSIGNMENT_TYPE = "Microsoft.Authorization/policyAssignments"
_SCOPE = r"(?P<scope>/subscriptions/(?P<subscription>[^/]+)(?:/resourcegroups/(?P<group>[^/]+)(?:/providers/.+?)?)?)"
_NAME = re.compile(r"^[^<>*%&:\\?+/#|]{1,64}$")
_POLICY_TYPE_FILTER = re.compile(r"^policyType\s+eq\s+'(BuiltIn|Custom|Static|NotSpecified)'$", re.IGNORECASE)
_CATEGORY_FILTER = re.compile(r"^category\s+eq\s+'((?:[^']|'')*)'$", re.IGNORECASE)
_MODES = ("All", "Indexed", catalog.KUBERNETES_MODE)


def _route(tail: str, methods: dict, type_name: str, namespace: str, versions: tuple[str, ...], *,
           scoped: bool = True, subscription_only: bool = False) -> Route:
    tail_re = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", tail)
    if not scoped:
        return Route(tail, re.compile(f"^{tail_re}/?$", re.IGNORECASE), methods, versions, type_name, namespace)
    if subscription_only:
        path = "/subscriptions/{subscription}" + tail
        regex = r"(?P<scope>/subscriptions/(?P<subscription>[^/]+))" + tail_re
    else:
        path, regex = "/{scope}" + tail, _SCOPE + tail_re
    return Route(path, re.compile(f"^{regex}/?$", re.IGNORECASE), methods, versions, type_name, namespace)


def routes(plane: ManagementPlane) -> list[Route]:
    h = AzurePolicy(plane)
    auth = "/providers/Microsoft.Authorization"
    states_at = "/providers/Microsoft.PolicyInsights/policyStates/latest"
    return [
        _route(auth + "/policyDefinitions", {"GET": h.list_definitions}, "policyDefinitions", AUTHORIZATION,
               API_VERSIONS, scoped=False),
        _route(auth + "/policyDefinitions/{name}", {"GET": h.get_definition}, "policyDefinitions", AUTHORIZATION,
               API_VERSIONS, scoped=False),
        _route(auth + "/policyDefinitions", {"GET": h.list_definitions}, "policyDefinitions", AUTHORIZATION,
               API_VERSIONS, subscription_only=True),
        _route(auth + "/policyDefinitions/{name}", {"GET": h.get_definition, "PUT": h.put_definition,
                                                    "DELETE": h.delete_definition},
               "policyDefinitions", AUTHORIZATION, API_VERSIONS, subscription_only=True),
        _route(auth + "/policySetDefinitions", {"GET": h.list_sets}, "policySetDefinitions", AUTHORIZATION,
               API_VERSIONS, scoped=False),
        _route(auth + "/policySetDefinitions/{name}", {"GET": h.get_set}, "policySetDefinitions", AUTHORIZATION,
               API_VERSIONS, scoped=False),
        _route(auth + "/policySetDefinitions", {"GET": h.list_sets}, "policySetDefinitions", AUTHORIZATION,
               API_VERSIONS, subscription_only=True),
        _route(auth + "/policySetDefinitions/{name}", {"GET": h.get_set, "PUT": h.put_set, "DELETE": h.delete_set},
               "policySetDefinitions", AUTHORIZATION, API_VERSIONS, subscription_only=True),
        _route(auth + "/policyAssignments", {"GET": h.list_assignments}, "policyAssignments", AUTHORIZATION,
               API_VERSIONS),
        _route(auth + "/policyAssignments/{name}", {"GET": h.get_assignment, "PUT": h.put_assignment,
                                                    "DELETE": h.delete_assignment},
               "policyAssignments", AUTHORIZATION, API_VERSIONS),
        _route(auth + "/policyAssignments/{name}/whatIf", {"POST": h.what_if}, "policyAssignments", AUTHORIZATION,
               API_VERSIONS),
        _route(states_at + "/queryResults", {"POST": h.query_states}, "policyStates", INSIGHTS,
               INSIGHTS_API_VERSIONS),
        _route(states_at + "/summarize", {"POST": h.summarize_states}, "policyStates", INSIGHTS,
               INSIGHTS_API_VERSIONS),
    ]


async def forget_scope(plane: ManagementPlane, scope: str) -> None:
    """A deleted resource or group takes along the policy assignments made at it or below it, as
    ARM's extension resources go with their parent, and the compliance states of a deleted cluster."""
    policies = assignments.PolicyStore(plane.docs.store)
    compliance = states.ComplianceStates(plane.docs.store)
    key = rbac.scope_key(scope)
    for doc in await policies.assignments():
        if rbac.covers(key, rbac.scope_key(doc["properties"]["scope"])):
            await policies.delete_assignment(doc["id"])
            await compliance.forget(assignment_id=doc["id"])
    await compliance.forget(cluster_id=scope)


def _definition_not_found(name: str) -> ARMError:
    return ARMError("PolicyDefinitionNotFound", f"The policy definition '{name}' could not be found.", 404)


def _set_not_found(name: str) -> ARMError:
    return ARMError("PolicySetDefinitionNotFound", f"The policy set definition '{name}' could not be found.", 404)


def _assignment_not_found(name: str) -> ARMError:
    return ARMError("PolicyAssignmentNotFound", f"The policy assignment '{name}' is not found.", 404)


def _bad_content(message: str) -> ARMError:
    return initiatives.bad_content(message)


def _named_properties(call: Call, kind: str, code: str) -> dict[str, Any]:
    """A PUT's `properties`, once the name in its path is one ARM takes for a policy `kind`."""
    name = call.params["name"]
    if not _NAME.match(name):
        raise ARMError(code, f"The policy {kind} name '{name}' is invalid. The name can have at most 64 "
                       "characters and cannot contain '<>*%&:\\?+/#|'.")
    body = call.body if isinstance(call.body, dict) else None
    props = (body or {}).get("properties")
    if not isinstance(props, dict):
        raise _bad_content("Required property 'properties' not found in JSON. Path ''.")
    return props


def _invalid_rule(name: str, reason: str) -> ARMError:
    return ARMError("InvalidPolicyRule", f"Failed to parse policy rule of policy definition '{name}': {reason}")


class AzurePolicy:
    def __init__(self, plane: ManagementPlane):
        self.plane = plane
        self.policies = assignments.PolicyStore(plane.docs.store)
        self.states = states.ComplianceStates(plane.docs.store)

    def _now(self) -> str:
        return iso8601(self.plane.clock.now())

    def _who(self, call: Call) -> str:
        return call.access.object_id if call.access is not None else (call.caller.object_id if call.caller else "")

    async def _require_scope(self, call: Call) -> None:
        """A scope must exist: its group (ResourceGroupNotFound), the resource it names (ResourceNotFound)."""
        group = call.params.get("group")
        if not group:
            return
        await self.plane.groups.require(call.params["subscription"], group)
        scope = call.params["scope"]
        lower = scope.lower()
        if "/providers/" not in lower:
            return
        if await self.plane.docs.get(scope) is None:
            rest = scope[lower.index("/providers/") + len("/providers/"):].split("/")
            raise not_found("/".join([rest[0], *rest[1::2]]), "/".join(rest[2::2]), group)

    # -- definitions --------------------------------------------------------------------------

    def _filter(self, call: Call) -> tuple[str | None, str | None]:
        text = call.request.query.get("$filter", "").strip()
        if not text:
            return None, None
        if m := _POLICY_TYPE_FILTER.match(text):
            return m.group(1).lower(), None
        if m := _CATEGORY_FILTER.match(text):
            return None, m.group(1).replace("''", "'").lower()
        raise ARMError("InvalidFilterInQueryString", f"The filter '{text}' is not supported. Supported filters are "
                       "'policyType eq '{value}'' and 'category eq '{value}''.")

    @staticmethod
    def _keep(doc: Doc, policy_type: str | None, category: str | None) -> bool:
        props = doc["properties"]
        if policy_type and str(props.get("policyType", "")).lower() != policy_type:
            return False
        return not category or str((props.get("metadata") or {}).get("category", "")).lower() == category

    async def list_definitions(self, call: Call) -> web.Response:
        policy_type, category = self._filter(call)
        docs = catalog.definitions()
        if call.params.get("subscription"):
            sub = call.params["subscription"].lower()
            docs += [d for d in await self.policies.custom_definitions() if d["id"].split("/")[2].lower() == sub]
        return json_response({"value": [d for d in docs if self._keep(d, policy_type, category)]})

    async def get_definition(self, call: Call) -> web.Response:
        name = call.params["name"]
        doc = catalog.definition(name)
        if doc is None and call.params.get("subscription"):
            doc = await self.policies.definition(self._definition_id(call))
        if doc is None:
            raise _definition_not_found(name)
        return json_response(doc)

    def _definition_id(self, call: Call) -> str:
        return f"/subscriptions/{call.params['subscription']}/providers/Microsoft.Authorization/policyDefinitions/" \
               f"{call.params['name']}"

    async def put_definition(self, call: Call) -> web.Response:
        """A custom definition at the subscription (ARM answers 201 for a create and a replace)."""
        name = call.params["name"]
        if catalog.definition(name) is not None:
            raise ARMError("InvalidPolicyDefinitionUpdate",
                           f"The built-in policy definition '{name}' cannot be updated.")
        props = _named_properties(call, "definition", "InvalidPolicyDefinitionName")
        if str(props.get("policyType", "Custom")).lower() not in ("custom", "notspecified"):
            raise ARMError("InvalidPolicyDefinitionType", "Only policy definitions of type 'Custom' can be created.")
        mode = props.get("mode", "Indexed")
        canonical = next((m for m in _MODES if m.lower() == str(mode).lower()), None)
        if canonical is None:
            raise ARMError("InvalidPolicyMode", f"The policy definition '{name}' has an invalid mode '{mode}'. The "
                           f"supported modes are '{', '.join(_MODES)}'.")
        declared = initiatives.check_declared(props.get("parameters"))
        rule = props.get("policyRule")
        if not isinstance(rule, dict) or not isinstance(rule.get("if"), dict) or not isinstance(rule.get("then"), dict):
            raise _invalid_rule(name, "the rule must be an object with 'if' and 'then'.")
        if "effect" not in rule["then"]:
            raise _invalid_rule(name, "'then' has no 'effect'.")
        doc: Doc = {"properties": {"policyType": "Custom", "mode": canonical,
                                   "displayName": props.get("displayName") or "",
                                   "description": props.get("description") or "",
                                   "metadata": props.get("metadata") or {}, "version": props.get("version", "1.0.0"),
                                   "parameters": declared, "policyRule": rule},
                    "id": self._definition_id(call), "type": catalog.DEFINITION_TYPE, "name": name}
        if canonical == catalog.KUBERNETES_MODE:
            info = catalog.details(doc).get("templateInfo")
            if not isinstance(info, dict):
                raise _invalid_rule(name, "a Microsoft.Kubernetes.Data definition needs 'then.details.templateInfo'.")
            try:
                catalog.template(doc)
            except catalog.TemplateError as err:
                raise _invalid_rule(name, str(err)) from None
        old = await self.policies.definition(doc["id"])
        now, who = self._now(), self._who(call)
        created = (old or {}).get("systemData") or {"createdBy": who, "createdByType": "User", "createdAt": now}
        doc["properties"]["metadata"] = {**doc["properties"]["metadata"],
                                         "createdBy": created["createdBy"], "createdOn": created["createdAt"],
                                         "updatedBy": who if old else None, "updatedOn": now if old else None}
        doc["systemData"] = {**created, "lastModifiedBy": who, "lastModifiedByType": "User", "lastModifiedAt": now}
        await self.policies.put_definition(doc)
        return json_response(doc, 201)

    async def delete_definition(self, call: Call) -> web.Response:
        name = call.params["name"]
        if catalog.definition(name) is not None:
            raise ARMError("InvalidPolicyDefinitionUpdate", f"The built-in policy definition '{name}' cannot be "
                           "deleted.")
        doc = await self.policies.definition(self._definition_id(call))
        if doc is None:
            return web.Response(status=204)
        await self.policies.delete_definition(doc["id"])
        return json_response(doc)

    # -- initiatives --------------------------------------------------------------------------

    async def list_sets(self, call: Call) -> web.Response:
        policy_type, category = self._filter(call)
        docs = catalog.set_definitions()
        if call.params.get("subscription"):
            sub = call.params["subscription"].lower()
            docs += [d for d in await self.policies.custom_set_definitions() if d["id"].split("/")[2].lower() == sub]
        return json_response({"value": [d for d in docs if self._keep(d, policy_type, category)]})

    def _set_id(self, call: Call) -> str:
        return f"/subscriptions/{call.params['subscription']}/providers/Microsoft.Authorization/" \
               f"policySetDefinitions/{call.params['name']}"

    async def get_set(self, call: Call) -> web.Response:
        doc = catalog.set_definition(call.params["name"])
        if doc is None and call.params.get("subscription"):
            doc = await self.policies.set_definition(self._set_id(call))
        if doc is None:
            raise _set_not_found(call.params["name"])
        return json_response(doc)

    async def put_set(self, call: Call) -> web.Response:
        """A custom initiative at the subscription (201 for a create and a replace, as for definitions)."""
        name = call.params["name"]
        if catalog.set_definition(name) is not None:
            raise ARMError("InvalidPolicySetDefinitionUpdate",
                           f"The built-in policy set definition '{name}' cannot be updated.")
        props = _named_properties(call, "set definition", "InvalidPolicySetDefinitionName")
        if str(props.get("policyType", "Custom")).lower() not in ("custom", "notspecified"):
            raise ARMError("InvalidPolicySetDefinitionType",
                           "Only policy set definitions of type 'Custom' can be created.")
        definitions = []
        for pid in initiatives.member_ids(props):
            if "/policysetdefinitions/" in pid.lower():
                raise ARMError("InvalidCreatePolicySetDefinitionRequest", f"The policy set definition '{name}' "
                               "request is invalid. Referenced policy definitions must be of type "
                               "'Microsoft.Authorization/policyDefinitions'.")
            found = await self._member(call, pid)
            if found is None:
                raise _definition_not_found(pid.rstrip("/").rsplit("/", 1)[-1])
            definitions.append(found)
        sid = self._set_id(call)
        old = await self.policies.set_definition(sid)
        built = initiatives.build(name, props, definitions, old)
        now, who = self._now(), self._who(call)
        created = (old or {}).get("systemData") or {"createdBy": who, "createdByType": "User", "createdAt": now}
        built["metadata"] = {**built["metadata"], "createdBy": created["createdBy"], "createdOn": created["createdAt"],
                             "updatedBy": who if old else None, "updatedOn": now if old else None}
        doc: Doc = {"properties": built, "id": sid, "type": catalog.SET_TYPE, "name": name,
                    "systemData": {**created, "lastModifiedBy": who, "lastModifiedByType": "User",
                                   "lastModifiedAt": now}}
        await self.policies.put_set_definition(doc)
        return json_response(doc, 201)

    async def _member(self, call: Call, definition_id: str) -> Doc | None:
        """A member definition: built-in, or custom in this subscription (ARM's ids, any case)."""
        lower = definition_id.lower()
        if "/providers/microsoft.authorization/policydefinitions/" not in lower:
            return None
        if lower.startswith("/subscriptions/") and lower.split("/")[2] != call.params["subscription"].lower():
            return None
        return await self.policies.definition(definition_id)

    async def delete_set(self, call: Call) -> web.Response:
        name = call.params["name"]
        if catalog.set_definition(name) is not None:
            raise ARMError("InvalidPolicySetDefinitionUpdate", f"The built-in policy set definition '{name}' cannot "
                           "be deleted.")
        doc = await self.policies.set_definition(self._set_id(call))
        if doc is None:
            return web.Response(status=204)
        await self.policies.delete_set_definition(doc["id"])
        return json_response(doc)

    # -- assignments --------------------------------------------------------------------------

    def _assignment_id(self, call: Call) -> str:
        return f"{call.params['scope']}/providers/Microsoft.Authorization/policyAssignments/{call.params['name']}"

    async def _target(self, policy_id: Any) -> Doc:
        """The definition or initiative an assignment names (ARM's not-found errors)."""
        if not isinstance(policy_id, str) or not policy_id:
            raise _bad_content("Required property 'policyDefinitionId' not found in JSON. Path 'properties'.")
        name = policy_id.rstrip("/").rsplit("/", 1)[-1]
        if "/policysetdefinitions/" in policy_id.lower():
            found = await self.policies.set_definition(policy_id)
            if found is None:
                raise ARMError("PolicySetDefinitionNotFound", f"The policy set definition '{name}' could not be "
                               "found.", 404)
            return found
        found = await self.policies.definition(policy_id) if "/policydefinitions/" in policy_id.lower() else None
        if found is None:
            raise ARMError("PolicyDefinitionNotFound", f"The policy definition '{name}' could not be found.", 404)
        return found

    async def put_assignment(self, call: Call) -> web.Response:
        await self._require_scope(call)
        doc = await self._assignment_doc(call)
        await self.policies.put_assignment(doc)
        return json_response(doc, 201)

    async def _assignment_doc(self, call: Call) -> Doc:
        """The assignment a PUT's body describes, checked as ARM checks it (not stored)."""
        name, scope = call.params["name"], call.params["scope"]
        props = _named_properties(call, "assignment", "InvalidPolicyAssignmentName")
        body = call.body  # a dict, since it has properties
        target = await self._target(props.get("policyDefinitionId"))
        mode = props.get("enforcementMode") or "Default"
        enforcement = next((m for m in ("Default", "DoNotEnforce") if m.lower() == str(mode).lower()), None)
        if enforcement is None:
            raise _bad_content(f"Error converting value \"{mode}\" to type 'EnforcementMode'. Path "
                               "'properties.enforcementMode'")
        not_scopes = props.get("notScopes") or []
        if not isinstance(not_scopes, list) or not all(isinstance(s, str) and s.startswith("/") for s in not_scopes):
            raise ARMError("InvalidNotScopes", "The policy assignment 'notScopes' must be a list of resource ids.")
        given = props.get("parameters")
        given = {} if given is None else given
        parameters.check(name, target, given)
        rid = self._assignment_id(call)
        old = await self.policies.assignment(rid)
        now, who = self._now(), self._who(call)
        created = (old or {}).get("systemData") or {"createdBy": who, "createdByType": "User", "createdAt": now}
        metadata = {**(props.get("metadata") or {}), "createdBy": created["createdBy"],
                    "createdOn": created["createdAt"], "updatedBy": who if old else None,
                    "updatedOn": now if old else None}
        doc: Doc = {
            "properties": {"displayName": props.get("displayName") or "", "policyDefinitionId": target["id"],
                           "definitionVersion": _major(target), "scope": scope, "notScopes": not_scopes,
                           "parameters": given, "metadata": metadata, "enforcementMode": enforcement,
                           "assignmentType": "Custom"},
            "id": rid, "type": ASSIGNMENT_TYPE, "name": name, "location": (body or {}).get("location"),
            "systemData": {**created, "lastModifiedBy": who, "lastModifiedByType": "User", "lastModifiedAt": now},
        }
        for key in ("description", "nonComplianceMessages"):
            if props.get(key) is not None:
                doc["properties"][key] = props[key]
        if doc["location"] is None:
            del doc["location"]
        if isinstance((body or {}).get("identity"), dict):
            doc["identity"] = body["identity"]
        return doc

    async def what_if(self, call: Call) -> web.Response:
        """Beyond ARM: POST `{assignmentId}/whatIf`, with no body for the stored assignment, or
        the body of its PUT for one not made (or changed) yet; for every cluster in scope whose
        add-on is on, the live objects that each constraint the assignment would install finds
        in violation (what Deny would refuse). Nothing is stored or installed."""
        await self._require_scope(call)
        if isinstance(call.body, dict) and call.body:
            doc = await self._assignment_doc(call)
        else:
            doc = await self.policies.assignment(self._assignment_id(call))
            if doc is None:
                raise _assignment_not_found(call.params["name"])
        return json_response({"value": await self.plane.policy_addon.what_if(doc)})

    async def get_assignment(self, call: Call) -> web.Response:
        await self._require_scope(call)
        doc = await self.policies.assignment(self._assignment_id(call))
        if doc is None:
            raise _assignment_not_found(call.params["name"])
        return json_response(doc)

    async def delete_assignment(self, call: Call) -> web.Response:
        await self._require_scope(call)
        doc = await self.policies.assignment(self._assignment_id(call))
        if doc is None:
            return web.Response(status=204)
        await self.policies.delete_assignment(doc["id"])
        await self.states.forget(assignment_id=doc["id"])
        return json_response(doc)

    async def list_assignments(self, call: Call) -> web.Response:
        """At the scope, above it and below it; with `atScope()` at and above it; `atExactScope()`
        only at it; `policyDefinitionId eq '…'` those of one definition."""
        await self._require_scope(call)
        here = rbac.scope_key(call.params["scope"])
        text = call.request.query.get("$filter", "").strip()
        at_scope = exact = False
        definition = None
        for clause in (re.split(r"\s+and\s+", text, flags=re.IGNORECASE) if text else []):
            clause = clause.strip()
            if clause.lower() == "atscope()":
                at_scope = True
            elif clause.lower() == "atexactscope()":
                exact = True
            elif m := re.match(r"^policyDefinitionId\s+eq\s+'([^']*)'$", clause, re.IGNORECASE):
                definition = m.group(1).lower()
            else:
                raise ARMError("InvalidFilterInQueryString", f"The filter '{text}' is not supported. Supported "
                               "filters are 'atScope()', 'atExactScope()' and 'policyDefinitionId eq '{value}''.")
        value = []
        for doc in await self.policies.assignments():
            key = rbac.scope_key(doc["properties"]["scope"])
            above, below = rbac.covers(key, here), rbac.covers(here, key)
            if exact and key != here or at_scope and not above or not (above or below):
                continue
            if definition and doc["properties"]["policyDefinitionId"].lower() != definition:
                continue
            if call.may("Microsoft.Authorization/policyAssignments/read", doc["id"]) or \
                    (above and call.may("Microsoft.Authorization/policyAssignments/read", here)):
                value.append(doc)
        return json_response({"value": value})

    # -- compliance ---------------------------------------------------------------------------

    async def _states(self, call: Call) -> list[Doc]:
        await self._require_scope(call)
        here = rbac.scope_key(call.params["scope"])
        found = [s for s in await self.states.all() if rbac.covers(here, rbac.scope_key(s["resourceId"]))]
        text = call.request.query.get("$filter", "").strip()
        if text:
            try:
                test = odata.predicate(text)
            except odata.FilterError as err:
                raise ARMError("InvalidFilterInQueryString", str(err)) from None
            found = [s for s in found if test(s)]
        order = call.request.query.get("$orderby", "").strip()
        if order:
            field, _, direction = order.partition(" ")
            if direction.strip().lower() not in ("", "asc", "desc"):
                raise ARMError("InvalidQueryParameterValue", f"Invalid value '{order}' for query parameter "
                               "'$orderby'.")
            found.sort(key=lambda s: str(_field(s, field) if _field(s, field) is not None else ""),
                       reverse=direction.strip().lower() == "desc")
        else:
            found.sort(key=lambda s: s["timestamp"], reverse=True)
        return found

    def _top(self, call: Call) -> int | None:
        raw = call.request.query.get("$top")
        if raw is None:
            return None
        if not raw.isdigit() or int(raw) < 0:
            raise ARMError("InvalidQueryParameterValue", f"Invalid value '{raw}' for query parameter '$top'.")
        return int(raw)

    def _context(self, call: Call, suffix: str) -> str:
        return f"{self.plane.endpoint}{call.params['scope']}/providers/Microsoft.PolicyInsights/policyStates/" \
               f"$metadata#{suffix}"

    async def query_states(self, call: Call) -> web.Response:
        found = await self._states(call)
        top = self._top(call)
        if top is not None:
            found = found[:top]
        expand = call.request.query.get("$expand", "").lower()
        context = self._context(call, "latest")
        value = []
        select = [f.strip().lower() for f in call.request.query.get("$select", "").split(",") if f.strip()]
        for s in found:
            shown = {"@odata.id": None, "@odata.context": context + "/$entity", **s}
            if "components" not in expand:
                shown.pop("components", None)
            if select:
                shown = {k: v for k, v in shown.items() if k.startswith("@odata") or k.lower() in select}
            value.append(shown)
        return json_response({"@odata.context": context, "@odata.count": len(value), "value": value})

    async def summarize_states(self, call: Call) -> web.Response:
        found = await self._states(call)
        summary = states.summarize(found)
        top = self._top(call)
        if top is not None:
            summary["policyAssignments"] = summary["policyAssignments"][:top]
        context = self._context(call, "summary")
        query_uri = f"{self.plane.endpoint}{call.params['scope']}/providers/Microsoft.PolicyInsights/policyStates/" \
                    f"latest/queryResults?api-version={call.api_version}"
        summary["results"]["queryResultsUri"] = query_uri
        value = [{"@odata.id": None, "@odata.context": context + "/$entity", **summary}]
        return json_response({"@odata.context": context, "@odata.count": 1, "value": value})


def _field(state: Doc, name: str) -> Any:
    lower = name.lower()
    return next((v for k, v in state.items() if k.lower() == lower), None)


def _major(doc: Doc) -> str:
    version = str((doc.get("properties") or {}).get("version") or "1.0.0")
    return version.split(".", 1)[0] + ".*.*"
