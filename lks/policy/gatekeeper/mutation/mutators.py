"""Gatekeeper's four mutators (`mutations.gatekeeper.sh`: Assign, AssignMetadata, ModifySet,
AssignImage) built from their objects as Gatekeeper's `MutatorFor*` builds them: the same
checks and error messages (the validating webhook refuses an invalid one with 422, `webhook`),
the `applyTo` bindings the schema check uses (`schema`), the `match` reused from constraints,
and `mutate`, the walk of `pkg/mutation/mutators/core` with its `pathTests`. `system.System`
applies them in order until the object stops changing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lks.policy.gatekeeper import constraints
from lks.policy.gatekeeper.mutation import path as paths

Obj = dict[str, Any]
GROUP = "mutations.gatekeeper.sh"
KINDS = {"Assign": "assign", "AssignMetadata": "assignmetadata", "ModifySet": "modifyset",
         "AssignImage": "assignimage"}  # kind -> plural
STORED = {"Assign": "v1", "AssignMetadata": "v1", "ModifySet": "v1", "AssignImage": "v1alpha1"}  # kind -> version
OPERATIONS = ("CREATE", "UPDATE")
UNKNOWN, SET, STRING = "Unknown", "Set", "String"  # terminal types of the schema check

_DOMAIN = re.compile(r"(^\w[\w\-_]*\.[\w\-_\.]*[\w](:\d+)?$)|(^localhost(:\d+)?$)")
_PATH = re.compile(r"^[a-z0-9]+(?:(?:(?:[._/]|__|[-]*)[a-z0-9]+)+)?")
_TAG = re.compile(r"(^:[\w][\w.-]{0,127}$)|(^@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}$)")


class InvalidMutator(ValueError):
    """A mutator Gatekeeper refuses to build (the message is Gatekeeper's)."""


class MutateError(ValueError):
    """A mutation that cannot be applied to this object (type mismatches, changed list keys)."""


@dataclass(eq=False)
class Mutator:
    kind: str
    name: str
    obj: Obj
    path: tuple[paths.Node, ...]
    tests: dict[int, str]  # depth -> MustExist | MustNotExist
    setter: Callable[[Obj, str, Obj], None]  # (parent, key, object under mutation)
    match: constraints.Constraint  # without `name`: matched here, with generateName too
    name_pattern: str | None
    source: str
    apply_to: list[Obj] | None  # None: AssignMetadata (no schema)
    terminal: str = UNKNOWN
    must_terminate: bool = False
    keyed_ok: bool = True  # the setter can put an element into a keyed list
    bindings: list[tuple[str, str, str, str]] = field(default_factory=list)  # (group, version, kind, operation)

    @property
    def id(self) -> tuple[str, str, str, str]:
        return (GROUP, self.kind, "", self.name)

    def describe(self) -> str:
        """Gatekeeper's `types.ID` text: `Assign.mutations.gatekeeper.sh /name`."""
        return f"{self.kind}.{GROUP} /{self.name}"

    # -- matching ----------------------------------------------------------------------

    def matches(self, group: str, version: str, kind: str, operation: str, target: constraints.Target,
                generate_name: str) -> bool:
        if self.apply_to is not None and not any(
                group in (a.get("groups") or []) and version in (a.get("versions") or [])
                and kind in (a.get("kinds") or []) and _operation_applies(a, operation) for a in self.apply_to):
            return False
        if self.source not in ("All", "Original"):  # the webhook's objects are the Original ones
            return False
        if self.name_pattern and not constraints.glob(self.name_pattern, target.name) and \
                not _matches_generate_name(self.name_pattern, generate_name):
            return False
        return self.match.matches(target)

    # -- mutating ----------------------------------------------------------------------

    def mutate(self, obj: Obj) -> bool:
        if not self.path:
            raise MutateError("attempting to mutate an empty target location")
        mutated, _ = self._walk(obj, 0, obj)
        return mutated

    def _exists_ok(self, depth: int) -> bool:
        return self.tests.get(depth, "MustExist") == "MustExist"

    def _missing_ok(self, depth: int) -> bool:
        return self.tests.get(depth, "MustNotExist") == "MustNotExist"

    def _walk(self, current: Any, depth: int, root: Obj) -> tuple[bool, Any]:
        node = self.path[depth]
        last = depth == len(self.path) - 1
        if isinstance(node, paths.Field):
            if not isinstance(current, dict):
                raise MutateError(f"mismatch between path entry (type: object) and received object (type: "
                                  f"{_go_type(current)}). Path: {{Reference:{node.name}}}")
            exists = node.name in current
            if not (self._exists_ok(depth) if exists else self._missing_ok(depth)):
                return False, None
            if last:
                self.setter(current, node.name, root)
                return True, current
            nxt = current[node.name] if exists else self._missing(depth)
            mutated, nxt = self._walk(nxt, depth + 1, root)
            if mutated:
                current[node.name] = nxt
            return mutated, current
        if not isinstance(current, list):
            raise MutateError(f"mismatch between path entry (type: List) and received object (type: "
                              f"{_go_type(current)}). Path: {{KeyField:{node.key} KeyValue:{node.value} "
                              f"Glob:{str(node.glob).lower()}}}")
        items = list(current)
        if last:
            if not self.keyed_ok:
                raise MutateError("mutator does not understand keyed lists")
            return self._set_element(items, node, depth, root)
        if node.glob and not self._exists_ok(depth):
            return False, None
        mutated = found = False
        for item in items:
            if node.glob:
                m, _ = self._walk(item, depth + 1, root)
                mutated, found = mutated or m, True
            elif isinstance(item, dict) and node.key in item and _same(item[node.key], node.value):
                if not self._exists_ok(depth):
                    return False, None
                m, _ = self._walk(item, depth + 1, root)
                mutated, found = mutated or m, True
        if not node.glob and not found:
            if not self._missing_ok(depth):
                return False, None
            nxt = self._missing(depth)
            items.append(nxt)
            m, _ = self._walk(nxt, depth + 1, root)
            mutated = mutated or m
        return mutated, items

    def _set_element(self, items: list, node: paths.Keyed, depth: int, root: Obj) -> tuple[bool, Any]:
        if node.glob:
            raise MutateError("last path entry can not be globbed")
        value = copy.deepcopy(self.obj["spec"]["parameters"]["assign"].get("value"))
        if not isinstance(value, dict):
            raise MutateError(f"assign.value for keyed list is not an object: {value}")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise MutateError(f"cast error, unable to case {_go_type(item)} to map[string]interface{{}}")
            if node.key in item and _same(item[node.key], node.value):
                if not _same(value.get(node.key), node.value):
                    raise MutateError("key value of replaced object must not change")
                if not self._exists_ok(depth):
                    return False, None
                items[i] = value
                return True, items
        if not self._missing_ok(depth):
            return False, None
        return True, [*items, value]

    def _missing(self, depth: int) -> Any:
        node, nxt = self.path[depth], self.path[depth + 1]
        made: Any = {} if isinstance(nxt, paths.Field) else []
        if isinstance(node, paths.Keyed):
            if not isinstance(made, dict):
                raise MutateError("two consecutive list path entries not allowed")
            made[node.key] = node.value
        return made


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _go_type(v: Any) -> str:
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string", bool: "bool",
            int: "int64", float: "float64"}.get(type(v), "<nil>")


def _operation_applies(apply_to: Obj, operation: str) -> bool:
    ops = apply_to.get("operations") or []
    return operation in OPERATIONS and (not ops or "*" in ops or operation in ops)


def _matches_generate_name(pattern: str, generate_name: str) -> bool:
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
        return pattern[1:-1] in generate_name
    if pattern.endswith("*"):
        return generate_name.startswith(pattern[:-1])
    return False


# -- building ------------------------------------------------------------------------------

def build(obj: Obj) -> Mutator:
    """The mutator of a `mutations.gatekeeper.sh` object, or InvalidMutator."""
    kind = obj.get("kind") or ""
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 63:
        raise InvalidMutator("maximum name length is 63 characters")
    spec = obj.get("spec") or {}
    location = spec.get("location") or ""
    params = spec.get("parameters") or {}
    try:
        path = paths.parse(location)
    except paths.PathError as err:
        wording = {"Assign": f"invalid location format `{location}` for Assign {name}",
                   "ModifySet": f"invalid location format `{location}` for ModifySet {name}",
                   "AssignImage": f"invalid location format `{location}` for assignImage {name}",
                   "AssignMetadata": f"invalid location format for AssignMetadata {name}: {location}"}[kind]
        raise InvalidMutator(f"{wording}: {err}") from None
    match = spec.get("match") or {}
    m = Mutator(kind=kind, name=name, obj=copy.deepcopy(obj), path=path, tests={}, setter=_noop,
                match=constraints.Constraint({"spec": {"match": {k: v for k, v in match.items() if k != "name"}}}),
                name_pattern=match.get("name"), source=match.get("source") or "All",
                apply_to=spec.get("applyTo") or [])
    if kind == "AssignMetadata":
        _build_metadata(m, name, location, params)
        return m
    metadata_root = bool(path) and path[0] == paths.Field("metadata")
    if kind == "Assign":
        if metadata_root:
            raise InvalidMutator(f"assign {name} can't change metadata")
        _check_key_not_changed(path)
        assign = params.get("assign") or {}
        _validate_assign(assign)
        if "value" in assign:
            _validate_object_assigned_to_list(path, assign["value"])
        if isinstance(path[-1], paths.Keyed) and "fromMetadata" in assign:
            raise InvalidMutator("cannot assign a metadata field to a list")
        m.setter = _assign_setter(assign)
    elif kind == "ModifySet":
        if metadata_root:
            raise InvalidMutator(f"modifyset {name} can't change metadata")
        if path and isinstance(path[-1], paths.Keyed):
            raise InvalidMutator("final node in a modifyset location cannot be a keyed list")
        m.setter = _modify_set_setter(params.get("operation") or "merge",
                                      (params.get("values") or {}).get("fromList") or [])
        m.terminal, m.keyed_ok = SET, False
    elif kind == "AssignImage":
        if metadata_root:
            raise InvalidMutator(f"assignImage {name} can't change metadata")
        if path and isinstance(path[-1], paths.Keyed):
            raise InvalidMutator(f"assignImage {name} cannot mutate list-type fields")
        _check_key_not_changed(path)
        domain, image_path, tag = (params.get("assignDomain") or "", params.get("assignPath") or "",
                                   params.get("assignTag") or "")
        err = _validate_image_parts(domain, image_path, tag)
        if err:
            raise InvalidMutator(f"assignImage {name} has invalid parameters: {err}")
        m.setter = _image_setter(domain, image_path, tag)
        m.terminal, m.must_terminate, m.keyed_ok = STRING, True, False
    else:
        raise InvalidMutator(f"unknown mutator kind {kind}")
    m.tests = _tests(name, kind, path, params.get("pathTests") or [])
    m.bindings = _bindings(name, kind, m.apply_to or [])
    return m


def _noop(parent: Obj, key: str, root: Obj) -> None:
    return None


def _build_metadata(m: Mutator, name: str, location: str, params: Obj) -> None:
    path = m.path
    if len(path) != 3 or not all(isinstance(n, paths.Field) for n in path) or \
            path[:2] not in ((paths.Field("metadata"), paths.Field("labels")),
                             (paths.Field("metadata"), paths.Field("annotations"))):
        raise InvalidMutator(f"invalid location for assignmetadata {name}: {location}")
    assign = params.get("assign") or {}
    _validate_assign(assign)
    if "value" in assign and not isinstance(assign["value"], str):
        raise InvalidMutator(f'spec.parameters.assign.value field must be a string for AssignMetadata "{name}"')
    m.apply_to = None
    m.tests = {2: "MustNotExist"}  # labels and annotations are only ever added, never changed
    m.setter = _assign_setter(assign)


def _validate_assign(assign: Obj) -> None:
    present = [k for k in ("value", "fromMetadata", "externalData") if assign.get(k) is not None]
    if not present:
        raise InvalidMutator("assign must set one of `externalData`, `value` or `fromMetadata`: invalid assign field")
    if len(present) > 1:
        raise InvalidMutator("assign must only set one of `externalData`, `value` or `fromMetadata`: "
                             "invalid assign field")
    if "fromMetadata" in present:
        fld = (assign["fromMetadata"] or {}).get("field") or ""
        if fld not in ("namespace", "name"):
            raise InvalidMutator(f"field {fld} is not recognized: invalid fromMetadata field")
    if "externalData" in present:  # this Gatekeeper runs without external data providers
        raise InvalidMutator("external data feature flag is not enabled")


def _check_key_not_changed(path: tuple[paths.Node, ...]) -> None:
    if not path:
        raise InvalidMutator("empty path")
    if len(path) < 2 or not isinstance(path[-2], paths.Keyed):
        return
    if isinstance(path[-1], paths.Keyed):
        raise InvalidMutator("invalid path format: child of a list can't be a list")
    if path[-1].name == path[-2].key:
        raise InvalidMutator("invalid path format: changing the item key is not allowed")


def _validate_object_assigned_to_list(path: tuple[paths.Node, ...], value: Any) -> None:
    last = path[-1]
    if not isinstance(last, paths.Keyed):
        return
    if last.glob:
        raise InvalidMutator("can't append to a globbed list")
    if not isinstance(value, dict):
        raise InvalidMutator(f"invalid value: `{_go_value(value)}`, only objects can be added to keyed lists")
    if not _same(value.get(last.key), last.value):
        raise InvalidMutator(f"adding object to list with different key {last.key}: list key {last.value}, "
                             f"object key {_go_value(value.get(last.key))}")


def _go_value(v: Any) -> str:
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "[" + " ".join(_go_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_value(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def _tests(name: str, kind: str, location: tuple[paths.Node, ...], tests: list[Obj]) -> dict[int, str]:
    out: dict[int, str] = {}
    parsed: list[tuple[tuple[paths.Node, ...], str]] = []
    for t in tests:
        sub = t.get("subPath") or ""
        try:
            p = paths.parse(sub)
        except paths.PathError as err:
            raise InvalidMutator(f"problem parsing sub path `{sub}` for {kind} {name}: {err}") from None
        if location[:len(p)] != p or len(p) > len(location):
            raise InvalidMutator(f"all subpaths must be a prefix of the `location` value of the mutation: subpath "
                                 f'"{paths.render(p)}" is not a prefix of location "{paths.render(location)}"')
        parsed.append((p, t.get("condition") or ""))
    lowest_must_not, highest_must = None, -1
    for i, (p, cond) in enumerate(parsed):
        if len(p) - 1 in out and out[len(p) - 1] != cond:
            raise InvalidMutator(f'conflicting path test conditions: path "{paths.render(p)}" is marked both '
                                 "MustExist and MustNotExist")
        out[len(p) - 1] = cond
        if cond == "MustNotExist" and lowest_must_not is None:
            lowest_must_not = i
        elif cond == "MustExist":
            highest_must = i
    if lowest_must_not is not None and highest_must > lowest_must_not:
        raise InvalidMutator(f'conflicting path test conditions: path "{paths.render(parsed[highest_must][0])}" '
                             f'is marked MustExist but parent "{paths.render(parsed[lowest_must_not][0])}" '
                             "MustNotExist")
    return out


def _bindings(name: str, kind: str, apply_to: list[Obj]) -> list[tuple[str, str, str, str]]:
    for a in apply_to:
        if not a.get("groups") or not a.get("versions") or not a.get("kinds"):
            raise InvalidMutator(f"invalid applyTo for {kind} mutator {name}, all of group, version and kind "
                                 "must be specified")
    errs = []
    for i, a in enumerate(apply_to):
        ops = a.get("operations") or []
        seen: set[str] = set()
        for op in ops:
            if op in seen:
                errs.append(f'duplicate operation "{op}" in applyTo[{i}].operations')
            seen.add(op)
            if op not in ("CREATE", "UPDATE", "*"):
                errs.append(f'invalid operation "{op}" in applyTo[{i}].operations: must be one of CREATE, UPDATE, *')
        if "*" in ops and len(ops) > 1:
            errs.append(f'wildcard "*" in applyTo[{i}].operations must not be combined with other operations')
    if errs:
        raise InvalidMutator(f"invalid applyTo for {kind} mutator {name}: {'; '.join(errs)}")
    if not apply_to:
        raise InvalidMutator(f"applyTo required for {kind} mutator {name}")
    out = set()
    for a in apply_to:
        ops = a.get("operations") or []
        effective = OPERATIONS if not ops or "*" in ops else [o for o in OPERATIONS if o in ops]
        for g in a["groups"]:
            for v in a["versions"]:
                for k in a["kinds"]:
                    out.update((g, v, k, o) for o in effective)
    return sorted(out)


# -- setters -------------------------------------------------------------------------------

def _assign_setter(assign: Obj) -> Callable[[Obj, str, Obj], None]:
    if assign.get("fromMetadata") is not None:
        fld = assign["fromMetadata"]["field"]

        def from_metadata(parent: Obj, key: str, root: Obj) -> None:
            parent[key] = ((root.get("metadata") or {}).get(fld)) or ""
        return from_metadata
    value = assign.get("value")

    def assign_value(parent: Obj, key: str, root: Obj) -> None:
        parent[key] = copy.deepcopy(value)
    return assign_value


def _modify_set_setter(operation: str, values: list) -> Callable[[Obj, str, Obj], None]:
    def modify(parent: Obj, key: str, root: Obj) -> None:
        if operation not in ("merge", "prune"):
            raise MutateError(f"unrecognized operation for modifyset: {operation}")
        if key not in parent:
            if operation == "merge":
                parent[key] = copy.deepcopy(values)
            return
        current = parent[key]
        if not isinstance(current, list):
            raise MutateError(f"{_go_value(current)} is not a list of values, cannot treat it as a set")
        if operation == "merge":
            parent[key] = current + [copy.deepcopy(v) for i, v in enumerate(values)
                                     if not any(_json_equal(v, e) for e in current)
                                     and not any(_json_equal(v, w) for w in values[:i])]
        else:
            parent[key] = [e for e in current if not any(_json_equal(v, e) for v in values)]
    return modify


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# -- AssignImage ---------------------------------------------------------------------------

def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or (not any(c in name[:i] for c in ".:") and name[:i] != "localhost"):
        return "", name
    return name[:i], name[i + 1:]


def _split_tag(rest: str) -> tuple[str, str]:
    cut = [i for i in (rest.find(":"), rest.find("@")) if i >= 0]
    if not cut:
        return rest, ""
    return rest[:min(cut)], rest[min(cut):]


def mutate_image(domain: str, image_path: str, tag: str, ref: str) -> str:
    old_domain, rest = _split_domain(ref)
    old_path, old_tag = _split_tag(rest)
    d, p, t = domain or old_domain, image_path or old_path, tag or old_tag
    return (d + "/" if d else "") + p + t


def _validate_image_parts(domain: str, image_path: str, tag: str) -> str | None:
    if not domain and not image_path and not tag:
        return "at least one of [assignDomain, assignPath, assignTag] must be set"
    if domain:
        if not _DOMAIN.search(domain):
            return f'assignDomain "{domain}" must be a fully-qualified domain name or localhost'
        if _split_domain(domain + "/") != (domain, ""):
            return f'domain "{domain}" could not be recognized as a valid domain'
    if image_path:
        found = _PATH.match(image_path)
        if found is None or found.group(0) != image_path:
            return f'assignPath "{image_path}" must be a valid docker image path'
    if tag:
        if not _TAG.search(tag):
            return f"assignTag \"{tag}\" must be a valid docker image tag or digest starting with ':' or '@'"
        if _split_tag(tag) != ("", tag):
            return f'tag "{tag}" could not be recognized as a valid tag or digest'
    if not domain and _split_domain(image_path)[0]:
        return (f'assignDomain must be set if the first part of assignPath "{image_path}" can be interpretted as '
                "part of a domain")
    return None


def _image_setter(domain: str, image_path: str, tag: str) -> Callable[[Obj, str, Obj], None]:
    def assign_image(parent: Obj, key: str, root: Obj) -> None:
        current = parent.get(key, "")
        if not isinstance(current, str):
            raise MutateError(f"expected value at AssignImage location to be a string, got {_go_value(current)} "
                              f"of type {_go_type(current)}")
        parent[key] = mutate_image(domain, image_path, tag, current)
    return assign_image
