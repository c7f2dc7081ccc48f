"""`metadata.managedFields` and server-side apply, as kube-apiserver's field manager
(`k8s.io/apimachinery/pkg/util/managedfields/internal`) and structured-merge-diff's
`merge.Updater` do them.

Every write records who set what. `update` runs after an ordinary write (POST, PUT, a non-apply
PATCH, a /status write): the writer gains the fields it changed, every other manager loses them
(and the fields the write removed). `apply` runs for `application/apply-patch+yaml`: it merges
the applied configuration into the live object (maps by key, map-lists by their keys, sets by
value, atomic values replaced), removes what this manager applied last time but no longer does
(unless someone else owns it), and answers 409 when the configuration changes a field another
manager owns, unless forced. Both are pure functions over JSON dicts; the registry and the PATCH
handler (`lks.kube.http`) call them and persist the result. Field paths, sets and the
schema-aware walks live in `lks.kube.fieldpath`.

The manager chain upstream wraps around both (`NewDefaultFieldManager`) is flattened here in its
order: version check, last-applied annotation upkeep and the client-side-apply migration for
the manager "kubectl", "before-first-apply" for objects that were never tracked, the cap of ten
Update managers, manager identities (manager, operation, apiVersion for updates, subresource),
timestamps, and the metadata fields no one owns.
"""

from __future__ import annotations

import copy
import datetime
import functools
from collections.abc import Iterable
from typing import Any

import orjson
import yaml

from lks import safeyaml
from lks.kube import errors, fieldpath, gojson, structural
from lks.kube.fieldpath import MISSING, FieldSet, Path, Type
from lks.kube.schema import Schema

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS = 10  # DefaultMaxUpdateManagers
FIELD_MANAGER_MAX_LENGTH = 128
_ANCIENT = "ancient-changes"
_BEFORE_FIRST_APPLY = "before-first-apply"

# owned by no one (stripMetaManager)
_STRIP = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {
    ("f:metadata", "f:" + f) for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                       "clusterName", "generation", "managedFields", "resourceVersion")})

Key = tuple[str, str, str, str]  # manager, operation, apiVersion ("" for Apply), subresource


class _Entry:
    """One managedFields entry; `fields` is its FieldsV1 tree, shared, never changed in place."""

    __slots__ = ("manager", "operation", "api_version", "subresource", "time", "fields", "raw")

    def __init__(self, manager: str, operation: str, api_version: str, subresource: str,
                 time: str | None, fields: dict, raw: dict | None = None):
        self.manager, self.operation, self.api_version = manager, operation, api_version
        self.subresource, self.time, self.fields, self.raw = subresource, time, fields, raw

    @property
    def key(self) -> Key:
        # BuildManagerIdentifier: appliers are one manager across versions
        return (self.manager, self.operation, self.api_version if self.operation == "Update" else "",
                self.subresource)

    def set_fields(self, fields: dict) -> None:
        self.fields, self.raw = fields, None

    def to_json(self) -> dict:
        if self.raw is not None:
            return dict(self.raw)
        out: dict[str, Any] = {}
        if self.manager:
            out["manager"] = self.manager
        out["operation"] = self.operation
        out["apiVersion"] = self.api_version
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self.fields
        if self.subresource:
            out["subresource"] = self.subresource
        return out


# --- request rules -------------------------------------------------------------------------------

def manager_name(field_manager: str | None, user_agent: str | None) -> str:
    """`managerOrUserAgent`: the `fieldManager` parameter, else the User-Agent up to its first
    "/" (kubectl's `kubectl/v1.37.1 (linux/amd64) ...` is "kubectl"), printable characters only,
    at most 128 bytes."""
    if field_manager:
        return field_manager
    out, size = [], 0
    for ch in (user_agent or "").split("/")[0]:
        if not ch.isprintable():
            continue
        size += len(ch.encode())
        if size > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
    return "".join(out)


def field_manager_causes(options_kind: str, *, field_manager: str | None, apply: bool = False,
                         force: bool | None = None) -> list[errors.Cause]:
    """The fieldManager/force part of `ValidatePatchOptions` (and of the Create/Update options;
    `lks.kube.queryparams` adds dryRun and fieldValidation). `force` is None when not given."""
    causes: list[errors.Cause] = []
    if options_kind == "PatchOptions":
        if apply and not field_manager:
            # kubectl defaults it to "kubectl"; controllers have to set it
            causes.append(errors.Cause.required("fieldManager", "is required for apply patch"))
        if not apply and force is not None:
            causes.append(errors.Cause.forbidden("force", "may not be specified for non-apply patch"))
    manager = field_manager or ""
    if len(manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        causes.append(errors.Cause(reason="FieldValueTooLong", field="fieldManager",
                                   message=f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"))
    pos = 0
    for ch in manager:
        if not ch.isprintable():
            causes.append(errors.Cause.invalid("fieldManager", manager,
                                               f"invalid character U+{ord(ch):04X} (at position {pos})"))
        pos += len(ch.encode())
    return causes


def parse_apply_body(body: bytes | str) -> tuple[dict, list[str]]:
    """An apply body (YAML, of which JSON is a case) as the object it holds, with the strict
    decoding complaints (repeated keys) that fieldValidation=Strict|Warn reports after the apply
    as "error strict decoding patch: ...". 400 "error decoding patch: ..." when it is no object."""
    obj: Any
    strict: list[str] = []
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            obj, strict = structural.parse_yaml_strict(body)
        except yaml.YAMLError as err:
            raise errors.bad_request(
                f"error decoding patch: error converting YAML to JSON: {safeyaml.message(err)}") from None
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise errors.bad_request(f"error decoding patch: json: cannot unmarshal {gojson.kind_of(obj)} "
                                 "into Go value of type map[string]interface {}")
    return obj, strict


def check_apply_object(obj: dict, *, api_version: str, kind: str) -> None:
    """versionCheckManager and the structured merge manager: the applied object is of the kind
    and version of the URL, and carries no managedFields."""
    have_av, have_kind = obj.get("apiVersion"), obj.get("kind")
    if have_av != api_version or have_kind != kind:
        raise errors.bad_request(f"invalid object type: {_gvk(have_av, have_kind)}")
    meta = obj.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")


def _gvk(api_version: Any, kind: Any) -> str:
    av = api_version if isinstance(api_version, str) else ""
    group, _, version = av.rpartition("/")
    if av.count("/") > 1:  # ParseGroupVersion fails: an empty GroupVersionKind
        return "/, Kind="
    return f"{group}/{version}, Kind={kind if isinstance(kind, str) else ''}"


def check_name(obj: dict, name: str, namespace: str) -> None:
    """`checkName` after a patch: the object still names the URL's object."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    obj_name = meta.get("name") or ""
    if obj_name != name:
        raise errors.bad_request(f"the name of the object ({obj_name}) does not match the name on the URL ({name})")
    obj_ns = meta.get("namespace") or ""
    if namespace and obj_ns and obj_ns != namespace:
        raise errors.bad_request(
            f"the namespace of the object ({obj_ns}) does not match the namespace on the request ({namespace})")


# --- ordinary writes -----------------------------------------------------------------------------

def update(old: dict | None, new: dict, *, manager: str, operation_subresource: str = "", now: str,
           schema: Schema | Type, api_version: str | None = None,
           reset_fields: Iterable[tuple[str, ...]] = ()) -> None:
    """Set `new["metadata"]["managedFields"]` after a create (`old` None) or an update.

    `manager` is `manager_name(...)`; `operation_subresource` "status" (etc.) for a subresource
    write; `now` the RFC 3339 time; `reset_fields` the strategy's reset fields for this endpoint
    (("status",) on a main resource with a status subresource, ("spec",) ... on /status): changes
    there are the strategy's, not the writer's. Call it with the object as written (defaulted),
    before or after the strategy resets fields; `new["metadata"]` is replaced by a copy.

    managedFields the client sent are honoured when valid and different from the live ones, and
    `[]` resets tracking; an object that exists untracked stays untracked until an apply.
    """
    t = schema if isinstance(schema, Type) else fieldpath.type_of(schema)
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return
    new["metadata"] = meta = dict(meta)  # never edit a metadata dict the caller may share with `old`
    old_meta = (old or {}).get("metadata") if isinstance((old or {}).get("metadata"), dict) else {}
    live = old_meta.get("managedFields")
    sent = meta.pop("managedFields", MISSING)
    entries = _live_or_new(live, sent, ignore_new=bool(operation_subresource))
    if not entries and old is not None and old_meta.get("uid"):
        return  # skipNonAppliedManager: existing objects are tracked from their first apply
    reset = [tuple("f:" + f for f in path) for path in reset_fields]
    api_version = api_version or new.get("apiVersion") or (old or {}).get("apiVersion") or ""
    if old is None and not entries:  # a create: one entry, the creator's
        fields = _created_fields(new, meta, t, manager, api_version, operation_subresource, reset)
        if fields:
            meta["managedFields"] = [
                _Entry(manager or "unknown", "Update", api_version, operation_subresource, now, fields).to_json()]
        return
    lhs = _without_managed_fields(old) if old is not None else fieldpath.zero_object(t)
    _record_update(entries, lhs, new, t, manager=manager, api_version=api_version,
                   subresource=operation_subresource, now=now, reset=reset)
    encoded = _encode_entries(entries)
    if encoded:
        meta["managedFields"] = encoded


# Objects made from one template (a ReplicaSet's pods) differ only in metadata the field manager
# strips, so what their creates give the creator is remembered by the rest of the object.
_META_STRIPPED = frozenset(p[1][2:] for p in _STRIP if len(p) == 2)
_created: dict[tuple, tuple[Type, dict | None]] = {}  # the Type is kept so its id stays its own


def _created_fields(new: dict, meta: dict, t: Type, manager: str, api_version: str, subresource: str,
                    reset: list[Path]) -> dict | None:
    """The FieldsV1 a create gives its manager (None: nothing)."""
    try:
        shape = orjson.dumps({**new, "metadata": {k: v for k, v in meta.items() if k not in _META_STRIPPED}})
    except (TypeError, orjson.JSONEncodeError):
        shape = None
    key = (id(t), manager, api_version, subresource, tuple(reset), shape)
    if shape is not None and (hit := _created.get(key)) is not None:
        return hit[1]
    c = fieldpath.compare(fieldpath.zero_object(t), new, t).without(reset)
    gained = [p for p in c.added | c.modified if p not in _STRIP]
    fields = fieldpath.encode(gained) if gained else None
    if shape is not None:
        if len(_created) >= 512:
            _created.clear()
        _created[key] = (t, fields)
    return fields


def _record_update(entries: dict[Key, _Entry], lhs: Any, rhs: Any, t: Type, *, manager: str, api_version: str,
                   subresource: str, now: str, reset: list[Path]) -> None:
    """Updater.Update with the managedFieldsUpdater, stripMeta and capManagers around it."""
    c = fieldpath.compare(lhs, rhs, t).without(reset)
    changed = c.added | c.modified
    touched = changed | c.removed
    gained = [p for p in changed if p not in _STRIP]
    mine = _Entry(manager or "unknown", "Update", api_version, subresource, now, {})
    if touched:
        for key, e in entries.items():
            if key == mine.key and gained:
                continue  # below, in one edit: most writers rewrite fields they own already
            lost = fieldpath.tree_paths(e.fields, touched)
            if lost:
                e.set_fields(fieldpath.tree_edit(e.fields, remove=lost))
    for key in [k for k, e in entries.items() if not e.fields]:
        del entries[key]
    if gained:
        prev = entries.get(mine.key)
        if prev is None:
            mine.set_fields(fieldpath.encode(gained))
        else:  # (prev - touched) | gained
            keep = set(gained)
            drop = [p for p in fieldpath.tree_paths(prev.fields, touched) if p not in keep]
            add = [p for p in gained if not fieldpath.tree_has(prev.fields, p)]
            mine.set_fields(fieldpath.tree_edit(prev.fields, remove=drop, add=add) if drop or add else prev.fields)
        entries[mine.key] = mine
    _cap_update_managers(entries)


def _cap_update_managers(entries: dict[Key, _Entry]) -> None:
    """capManagersManager: past ten Update managers, the oldest ones of a version merge into
    "ancient-changes" (the first of each version is kept, as upstream does)."""
    updaters = [k for k, e in entries.items() if e.operation != "Apply"]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (_seconds(entries[k].time), _identifier(k)))
    first: dict[str, Key] = {}
    length = len(updaters)
    for k in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        e = entries[k]
        bucket = (_ANCIENT, "Update", e.api_version, "")
        if e.api_version in first:
            if bucket not in entries:
                moved = entries.pop(first[e.api_version])
                entries[bucket] = _Entry(_ANCIENT, "Update", e.api_version, "", moved.time, moved.fields)
            b = entries[bucket]
            b.set_fields(fieldpath.encode(fieldpath.decode(e.fields) | fieldpath.decode(b.fields)))
            b.time = e.time
            if k != bucket:
                del entries[k]
            length -= 1
        else:
            first[e.api_version] = k


def update_scale(old: dict, new: dict, *, manager: str, replicas_path: tuple[str, ...] = ("spec", "replicas"),
                 api_version: str | None = None) -> None:
    """Set the parent's managedFields after a write through /scale (`new` is the parent with the
    Scale's replicas copied in). This is the net effect of upstream's ScaleHandler around the
    Scale's own field manager: when the replicas change and someone owned them, the writer now
    owns them alone, in an Update entry with subresource "scale", the parent's apiVersion and no
    time (`ToParent` finds none); when nobody owned them the Scale is untracked and nothing is
    recorded. `replicas_path` is a CRD's specReplicasPath, split."""
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return
    new["metadata"] = meta = dict(meta)
    meta.pop("managedFields", None)
    try:
        entries = _decode_entries(((old or {}).get("metadata") or {}).get("managedFields"), canonical=False)
    except ValueError:
        entries = {}
    path = tuple("f:" + p for p in replicas_path)
    owners = [k for k, e in entries.items() if fieldpath.tree_has(e.fields, path)]
    if owners and _get(old, replicas_path) != _get(new, replicas_path):
        for k in owners:
            e = entries[k]
            e.set_fields(fieldpath.tree_edit(e.fields, remove=[path]))
            if not e.fields:
                del entries[k]
        e = _Entry(manager or "unknown", "Update", api_version or new.get("apiVersion") or "", "scale", None,
                   fieldpath.encode({path}))
        entries[e.key] = e
    encoded = _encode_entries(entries)
    if encoded:
        meta["managedFields"] = encoded


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        obj = obj.get(p, MISSING) if isinstance(obj, dict) else MISSING
    return obj


# --- server-side apply ---------------------------------------------------------------------------

def apply(current: dict | None, applied: dict, *, manager: str, force: bool, now: str, schema: Schema | Type,
          api_version: str | None = None, kind: str | None = None, subresource: str = "",
          reset_fields: Iterable[tuple[str, ...]] = ()) -> dict:
    """Server-side apply of `applied` (from `parse_apply_body`) to `current` (None: create).
    Returns the new object, managedFields set, sharing nothing with the arguments; raises the
    409 conflict or the 400s upstream answers. `api_version`/`kind` are the URL's (default:
    the live object's); `reset_fields` as for `update`."""
    t = schema if isinstance(schema, Type) else fieldpath.type_of(schema)
    gvk = _schema_gvk(t)
    api_version = api_version or (current or {}).get("apiVersion") or gvk[0] or applied.get("apiVersion") or ""
    kind = kind or (current or {}).get("kind") or gvk[1] or applied.get("kind") or ""
    check_apply_object(applied, api_version=api_version, kind=kind)
    _check_lists(applied, t, (), applied, api_version, kind)
    try:
        entries = _decode_entries(((current or {}).get("metadata") or {}).get("managedFields"), canonical=False)
    except ValueError as err:
        raise errors.APIError(500, "", f"failed to decode managed fields: {err}") from None
    live = _without_managed_fields(current) if current is not None else fieldpath.zero_object(t)
    reset = [tuple("f:" + f for f in path) for path in reset_fields]

    def attempt(force: bool) -> tuple[Any, dict[Key, _Entry]]:
        mine = {k: _Entry(e.manager, e.operation, e.api_version, e.subresource, e.time, e.fields, e.raw)
                for k, e in entries.items()}
        return _apply(mine, live, applied, t, manager=manager, force=force, now=now, api_version=api_version,
                      subresource=subresource, reset=reset), mine

    try:
        obj, final = attempt(force)
    except _Conflicts as conflicts:
        # lastAppliedManager: "kubectl" moving from client-side apply may take over the fields
        # its last-applied annotation shows it set and that nobody changed since
        allowed = _last_applied_fields(current, t, api_version) if manager == "kubectl" else None
        if allowed is None:
            raise conflicts.error() from None
        remaining = [(k, [p for p in paths if p not in allowed]) for k, paths in conflicts.items]
        remaining = [(k, paths) for k, paths in remaining if paths]
        if remaining:
            raise _Conflicts(remaining).error() from None
        obj, final = attempt(True)
    obj = _clone(obj)
    meta = obj.setdefault("metadata", {})
    if manager == "kubectl" and isinstance(meta.get("annotations"), dict) and meta["annotations"].get(LAST_APPLIED):
        meta["annotations"][LAST_APPLIED] = _last_applied(applied)
    meta.pop("managedFields", None)
    encoded = _encode_entries(final)
    if encoded:
        meta["managedFields"] = encoded
    return obj


def _schema_gvk(t: Type) -> tuple[str | None, str | None]:
    """A built-in kind's apiVersion and kind, from its definition."""
    gvks = t.node.get("x-kubernetes-group-version-kind") or []
    if len(gvks) != 1:
        return None, None
    group, version = gvks[0].get("group") or "", gvks[0].get("version") or ""
    return (f"{group}/{version}" if group else version), gvks[0].get("kind")


def _apply(entries: dict[Key, _Entry], live: dict, applied: dict, t: Type, *, manager: str, force: bool,
           now: str, api_version: str, subresource: str, reset: list[Path]) -> Any:
    """Updater.Apply inside skipNonApplied, managedFieldsUpdater and stripMeta."""
    if not entries:
        _record_update(entries, fieldpath.zero_object(t), live, t, manager=_BEFORE_FIRST_APPLY,
                       api_version=api_version, subresource=subresource, now=now, reset=reset)
    merged = _merge(live, applied, t)
    me = _Entry(manager, "Apply", api_version, subresource, None, {})
    prev = entries.get(me.key)
    me.time = prev.time if prev else None
    last = fieldpath.decode(prev.fields) if prev else set()
    mine = fieldpath.without_prefixes(fieldpath.fields_of(applied, t), reset)
    me.set_fields(fieldpath.encode(mine))
    entries[me.key] = me
    if last - mine:
        owned: FieldSet = set(mine)
        for k, e in entries.items():
            if k != me.key:
                owned |= fieldpath.decode(e.fields)
        merged = _prune(merged, owned, last, t)
    c = fieldpath.compare(live, merged, t).without(reset)
    changed = c.added | c.modified
    conflicts = []
    for k, e in entries.items():
        if k != me.key:
            hit = fieldpath.tree_paths(e.fields, changed)
            if hit:
                conflicts.append((k, hit))
    if conflicts and not force:
        raise _Conflicts(conflicts)
    touched = changed | c.removed
    for k, e in list(entries.items()):
        if k != me.key:
            lost = fieldpath.tree_paths(e.fields, touched)
            if lost:
                e.set_fields(fieldpath.tree_edit(e.fields, remove=lost))
            if not e.fields:
                del entries[k]
    stripped = {p for p in mine if p not in _STRIP}
    if not stripped:
        del entries[me.key]
    elif len(stripped) != len(mine):
        me.set_fields(fieldpath.encode(stripped))
    if merged == live:
        return live  # a no-op keeps the applier's time
    if me.key in entries:
        me.time = now
    return merged


class _Conflicts(Exception):
    """merge.Conflicts: the paths other managers own that the apply would change."""

    def __init__(self, items: list[tuple[Key, list[Path]]]):
        super().__init__("conflicts")
        self.items = items

    def error(self) -> errors.APIError:
        """internal.NewConflictError: one cause per conflict, managers in order."""
        groups = sorted(self.items, key=lambda kv: _identifier(kv[0]))
        flat = [(k, p) for k, paths in groups for p in fieldpath.sort_paths(paths)]
        causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_print_manager(k)}",
                   "field": fieldpath.path_string(p)} for k, p in flat]
        if len(flat) == 1:
            k, p = flat[0]
            message = f"Apply failed with 1 conflict: conflict with {_print_manager(k)}: {fieldpath.path_string(p)}"
        else:
            lines = []
            for k, paths in groups:
                lines.append(f"conflicts with {_print_manager(k)}:")
                lines.extend(f"- {fieldpath.path_string(p)}" for p in fieldpath.sort_paths(paths))
            message = f"Apply failed with {len(flat)} conflicts: " + "\n".join(lines)
        return errors.APIError(409, "Conflict", message, details={"causes": causes})


def _print_manager(key: Key) -> str:
    manager, operation, api_version, subresource = key
    out = structural.go_quote(manager)
    if subresource:
        out += f" with subresource {structural.go_quote(subresource)}"
    if operation == "Update":
        out += f" using {api_version}"
    return out


def _last_applied_fields(current: dict | None, t: Type, api_version: str) -> FieldSet | None:
    """The fields the last-applied annotation set that still hold its values
    (`allowedConflictsFromLastApplied`), or None when there is no usable annotation."""
    annotations = ((current or {}).get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    if not raw or not isinstance(raw, str):
        return None
    try:
        last = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    c = fieldpath.compare(last, _without_managed_fields(current), t)
    return fieldpath.fields_of(last, t) - c.added - c.modified - c.removed


def _last_applied(applied: dict) -> str:
    """The annotation kubectl keeps: the applied object without it, as Go encodes a map."""
    obj = _clone(applied)
    annotations = (obj.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    return fieldpath.go_json(obj) + "\n"


def _check_lists(v: Any, t: Type, path: Path, obj: dict, api_version: str, kind: str) -> None:
    """The part of the applied object's validation (`ObjectToTyped`) that the merge needs:
    associative list items must be identifiable and unique."""
    if isinstance(v, dict):
        for k, val in v.items():
            if isinstance(val, (dict, list)):
                _check_lists(val, t.field(k) if t.kind in (fieldpath.MAP, fieldpath.ANY) else fieldpath._ANY,
                             path + ("f:" + k,), obj, api_version, kind)
    elif isinstance(v, list) and t.kind == fieldpath.LIST and not t.atomic:
        seen = set()
        for i, item in enumerate(v):
            pe = fieldpath.item_element(item, t)
            problem = None
            if pe is None:
                if t.keys:
                    keys = "[" + " ".join(structural.go_quote(k) for k in t.keys) + "]"
                    problem = (f"element {i}: associative list with keys has an element that omits all key fields "
                               f"{keys} (and doesn't have default values for any key fields)")
                else:
                    problem = f"element {i}: associative list without keys has an element that's a map type" \
                        if isinstance(item, dict) else f"element {i}: invalid set element"
            elif pe in seen:
                problem = f"duplicate entries for key {fieldpath.path_string((pe,))}"
            if problem:
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                where = f"{meta.get('namespace', '')}/{meta.get('name', '')}; {_gvk(api_version, kind)}"
                raise errors.APIError(500, "", f"failed to create typed patch object ({where}): "
                                                f"{fieldpath.path_string(path)}: {problem}")
            seen.add(pe)
            if isinstance(item, (dict, list)):
                _check_lists(item, t.elem, path + (pe,), obj, api_version, kind)


# --- merging and pruning -------------------------------------------------------------------------

def _merge(lhs: Any, rhs: Any, t: Type) -> Any:
    """TypedValue.Merge with ruleKeepRHS: the applied value wins on leaves; granular maps and
    lists combine, lists keeping the live order around the applied one (visitListItems)."""
    if rhs is MISSING:
        return lhs
    if lhs is MISSING:
        return rhs
    shape = fieldpath._shape(rhs if rhs is not None else lhs, t)
    if shape == fieldpath.MAP and isinstance(lhs, (dict, type(None))) and isinstance(rhs, (dict, type(None))):
        if (t.atomic and t.kind == fieldpath.MAP) or (not lhs and not rhs):
            return rhs
        if not rhs:
            return lhs
        if not lhs:
            return rhs
        out = {}
        for k, lv in lhs.items():
            out[k] = _merge(lv, rhs.get(k, MISSING), t.field(k))
        for k, rv in rhs.items():
            if k not in lhs:
                out[k] = rv
        return out
    if shape == fieldpath.LIST and not t.atomic and isinstance(lhs, (list, type(None))) and isinstance(
            rhs, (list, type(None))):
        if not lhs and not rhs:
            return rhs
        return _merge_items(lhs or [], rhs or [], t)
    return rhs


def _merge_items(lhs: list, rhs: list, t: Type) -> list:
    elem = t.elem
    r_pes = [fieldpath.item_element(item, t) for item in rhs]
    r_obs = dict(zip(r_pes, rhs, strict=True))
    l_pes: list[str] = []
    l_items: list[Any] = []
    l_obs: dict[str, Any] = {}
    for item in lhs:
        pe = fieldpath.item_element(item, t)
        if pe is None:
            continue
        # a duplicated live item merges as null, as upstream's observed map does
        l_obs[pe] = None if pe in l_obs else item
        l_pes.append(pe)
        l_items.append(item)
    shared = [pe for pe in r_pes if pe in l_obs]
    next_shared = shared.pop(0) if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(l_pes) or ri < len(r_pes):
        if li < len(l_pes) and ri < len(r_pes):
            pe = l_pes[li]
            if pe == r_pes[ri]:
                merged_rhs.add(pe)
                out.append(_merge(l_obs[pe], r_obs[pe], elem))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in r_obs and next_shared is not None and next_shared != pe:
                li += 1  # shared, but not the one wanted in this round
                continue
        if li < len(l_pes):
            pe = l_pes[li]
            if pe not in r_obs:
                out.append(l_items[li])
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
        if ri < len(r_pes):
            pe = r_pes[ri]
            merged_rhs.add(pe)
            out.append(_merge(l_obs.get(pe, MISSING), r_obs[pe], elem))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def _prune(merged: Any, owned: FieldSet, last: FieldSet, t: Type) -> Any:
    """Updater.prune: remove what the applier set last time and no longer does, unless another
    manager (or the new configuration) owns it; then put back what that removal took along but
    the applier never owned (addBackOwnedItems, addBackDanglingItems)."""
    last_e = _ensure_named(last, t)
    pruned = _remove(merged, _trie(last_e), t)
    merged_set = _ensure_named(fieldpath.fields_of(merged, t), t)
    keep = _ensure_named(fieldpath.fields_of(pruned, t), t) | _ensure_named(owned, t)
    pruned = _remove(merged, _trie(merged_set - keep), t)
    drop = (merged_set - _ensure_named(fieldpath.fields_of(pruned, t), t)) & last_e
    out = _remove(merged, _trie(drop), t)
    return {} if out is _EMPTIED else out


def _ensure_named(fs: FieldSet, t: Type) -> FieldSet:
    """Set.EnsureNamedFieldsAreMembers: struct fields with members below them become members."""
    out = set(fs)
    seen: dict[Path, Type] = {(): t}
    for p in fs:
        for i in range(1, len(p)):
            prefix = p[:i]
            if prefix in seen:
                continue
            parent = seen[p[:i - 1]]
            pe = prefix[-1]
            if pe.startswith("f:"):
                name = pe[2:]
                if parent.named(name):
                    out.add(prefix)
                seen[prefix] = parent.field(name)
            else:
                seen[prefix] = parent.elem if pe.startswith("k:") else fieldpath._ANY
    return out


def _trie(fs: FieldSet) -> dict:
    root: dict = {}
    for p in fs:
        node = root
        for pe in p[:-1]:
            node = node.setdefault(pe, [False, {}])[1]
        node.setdefault(p[-1], [False, {}])[0] = True
    return root


class _Emptied:
    __slots__ = ()


_EMPTIED: Any = _Emptied()


def _remove(v: Any, trie: dict, t: Type) -> Any:
    """TypedValue.RemoveItems. A map or list left empty becomes null, as upstream leaves it; in
    a built-in object, what its Go struct makes of null (the zero value, or nothing under
    omitempty)."""
    if not trie:
        return v
    shape = fieldpath._shape(v, t)
    if shape == fieldpath.MAP:
        if not isinstance(v, dict) or not v or (t.atomic and t.kind == fieldpath.MAP):
            return v
        out = {}
        for k, val in v.items():
            node = trie.get("f:" + k)
            if node is None:
                out[k] = val
                continue
            if node[0]:
                continue
            new = _remove(val, node[1], t.field(k))
            if new is _EMPTIED:
                new = t.go.zero(k) if t.go is not None else None
                if new is MISSING:
                    continue
            out[k] = new
        return out if out else _EMPTIED
    if shape == fieldpath.LIST:
        if not isinstance(v, list) or not v or t.atomic:
            return v
        items = []
        for item in v:
            pe = fieldpath.item_element(item, t)
            node = trie.get(pe) if pe is not None else None
            if node is None:
                items.append(item)
            elif not node[0]:
                new = _remove(item, node[1], t.elem)
                items.append(None if new is _EMPTIED else new)
        return items if items else _EMPTIED
    return v


# --- managedFields encoding ----------------------------------------------------------------------

def takes_sent(live: Any, sent: Any, *, subresource: str = "") -> bool:
    """Whether the managedFields a write carries replace the live ones (`decodeLiveOrNew`
    picks them: a reset, or valid entries that differ). Such a write changes the object even
    when nothing else does, as a `kubectl patch --type=json` of `/metadata/managedFields` or
    kubectl's client-side to server-side apply upgrade expects."""
    if subresource or sent is MISSING or sent is None or sent == live:
        return False
    if _is_reset(sent):
        return bool(live)
    try:
        return bool(_decode_entries(sent, canonical=True))
    except ValueError:
        return False


def _is_reset(sent: Any) -> bool:
    """isResetManagedFields: `[]` or `[{}]` clears tracking."""
    return isinstance(sent, list) and (not sent or (len(sent) == 1 and isinstance(sent[0], dict)
                                                    and not any(sent[0].values())))


def entry_causes(mf: Any) -> list[errors.Cause]:
    """ValidateManagedFields, part of every object's metadata validation: what decoding lets
    through (an unknown operation or fieldsType falls back to the live entries before this)
    but no entry may hold."""
    causes: list[errors.Cause] = []
    for i, raw in enumerate(mf if isinstance(mf, list) else []):
        if not isinstance(raw, dict):
            continue
        path = f"metadata.managedFields[{i}]"
        if raw.get("operation") not in ("Apply", "Update"):
            causes.append(errors.Cause.invalid(f"{path}.operation", raw.get("operation") or "",
                                               "must be `Apply` or `Update`"))
        if raw.get("fieldsType") and raw.get("fieldsType") != "FieldsV1":
            causes.append(errors.Cause.invalid(f"{path}.fieldsType", raw.get("fieldsType"), "must be `FieldsV1`"))
        manager = raw.get("manager")
        causes += [errors.Cause(reason=c["reason"], field=f"{path}.manager", message=c["message"])
                   for c in field_manager_causes("", field_manager=manager if isinstance(manager, str) else "")]
        sub = raw.get("subresource")
        if isinstance(sub, str) and len(sub) > _MAX_SUBRESOURCE:
            causes.append(errors.Cause(reason="FieldValueTooLong", field=f"{path}.subresource",
                                       message=f"Too long: may not be more than {_MAX_SUBRESOURCE} bytes"))
    return causes


_MAX_SUBRESOURCE = 256  # MaxSubresourceNameLength


def _live_or_new(live: Any, sent: Any, *, ignore_new: bool) -> dict[Key, _Entry]:
    """decodeLiveOrNew: the managedFields a write starts from."""
    if not ignore_new and sent is not MISSING and sent is not None:
        if _is_reset(sent):
            return {}  # clears tracking
        if sent != live:
            try:
                entries = _decode_entries(sent, canonical=True)
            except ValueError:
                entries = {}
            if entries:
                return entries
    try:
        return _decode_entries(live, canonical=False)
    except ValueError:
        return {}


def _decode_entries(mf: Any, *, canonical: bool) -> dict[Key, _Entry]:
    """DecodeManagedFields; `canonical` re-encodes the field sets (clients' entries), which ours
    already are. Later entries with the same identity replace earlier ones."""
    if mf is None:
        return {}
    if not isinstance(mf, list):
        raise ValueError("managedFields must be a list")
    entries: dict[Key, _Entry] = {}
    for i, raw in enumerate(mf):
        if not isinstance(raw, dict):
            raise ValueError(f"managed fields entry {i} is not an object")
        operation = raw.get("operation")
        if operation not in ("Apply", "Update"):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = raw.get("apiVersion")
        if not api_version or not isinstance(api_version, str):
            raise ValueError("apiVersion must not be empty")
        fields_type = raw.get("fieldsType")
        if not fields_type:
            raise ValueError(f"missing fieldsType in managed fields entry {i}")
        if fields_type != "FieldsV1":
            raise ValueError(f"invalid fieldsType {fields_type!r} in managed fields entry {i}")
        fields = raw.get("fieldsV1")
        if fields is None:
            fields = {}
        elif canonical:
            fields = fieldpath.encode(fieldpath.decode(fields))
        elif not isinstance(fields, dict):
            raise ValueError(f"error decoding set in managed fields entry {i}")
        manager, subresource, time = raw.get("manager") or "", raw.get("subresource") or "", raw.get("time")
        if not all(isinstance(x, str) for x in (manager, subresource)) or not isinstance(time, (str, type(None))):
            raise ValueError(f"invalid managed fields entry {i}")
        e = _Entry(manager, operation, api_version, subresource, time, fields, None if canonical else raw)
        entries[e.key] = e
    return entries


def _encode_entries(entries: dict[Key, _Entry]) -> list[dict] | None:
    """encodeManagedFields: sorted by operation, time, manager, apiVersion, subresource."""
    if not entries:
        return None
    ordered = sorted(entries.values(), key=lambda e: (e.operation, _seconds(e.time), e.manager, e.api_version,
                                                      e.subresource))
    return [e.to_json() for e in ordered]


@functools.lru_cache(maxsize=4096)
def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.datetime.fromisoformat(time).timestamp())
    except ValueError:
        return 0


def _identifier(key: Key) -> str:
    """BuildManagerIdentifier's JSON, which upstream sorts managers by."""
    manager, operation, api_version, subresource = key
    parts = []
    if manager:
        parts.append('"manager":' + fieldpath.go_json(manager))
    parts.append('"operation":' + fieldpath.go_json(operation))
    if api_version:
        parts.append('"apiVersion":' + fieldpath.go_json(api_version))
    if subresource:
        parts.append('"subresource":' + fieldpath.go_json(subresource))
    return "{" + ",".join(parts) + "}"


def _without_managed_fields(obj: Any) -> Any:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _clone(v: Any) -> Any:
    try:
        return orjson.loads(orjson.dumps(v))
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits
        return copy.deepcopy(v)
