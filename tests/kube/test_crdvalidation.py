"""CRD validation against upstream's messages (apiextensions `validation.go`, the structural
schema rules and their integration tests), and Go's regexp errors for `pattern`."""

from __future__ import annotations

import pytest

from lks.kube import crdvalidation, goregexp

P = "spec.validation.openAPIV3Schema"


def _crd(schema=None, versions=("v1",), group="example.com", **version_extra) -> dict:
    return {
        "metadata": {"name": f"foos.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "foos", "singular": "foo", "kind": "Foo", "listKind": "FooList"},
                 "conversion": {"strategy": "None"},
                 "versions": [{"name": v, "served": True, "storage": i == 0,
                               "schema": {"openAPIV3Schema": schema if schema is not None else {"type": "object"}},
                               **version_extra} for i, v in enumerate(versions)]},
        "status": {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": [versions[0]]},
    }


def _texts(crd: dict, old: dict | None = None) -> list[str]:
    return [c.text() for c in crdvalidation.validate(crd, old)]


def test_a_valid_crd_passes():
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "string", "enum": ["s", "l"], "pattern": "^[a-z]+$"},
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "x-kubernetes-preserve-unknown-fields": True}}},
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}}}}
    assert _texts(_crd(schema, subresources={"status": {}})) == []


@pytest.mark.parametrize("schema, expected", [
    pytest.param({"type": "object", "properties": {"spec": {"type": "object", "properties": {"x": {"type": "frob"}}}}},
                 [f'{P}.properties[spec].properties[x].type: Unsupported value: "frob": supported values: "array", '
                  '"boolean", "integer", "number", "object", "string"'], id="unknown-type"),
    pytest.param({"type": "object", "properties": {"foo": {"type": "string", "pattern": "+"}}},
                 [f"{P}.properties[foo].pattern: Invalid value: \"+\": must be a valid regular expression, but isn't: "
                  "error parsing regexp: missing argument to repetition operator: `+`"], id="pattern"),
    pytest.param({"type": "object", "properties": {"a": {}}},
                 [f"{P}.properties[a].type: Required value: must not be empty for specified object fields"],
                 id="field-without-type"),
    pytest.param({"type": "integer"}, [f'{P}.type: Invalid value: "integer": must be object at the root'],
                 id="root-not-object"),
    pytest.param({"x-kubernetes-preserve-unknown-fields": True, "x-kubernetes-int-or-string": True},
                 [f"{P}.x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if "
                  "x-kubernetes-int-or-string is true"], id="int-or-string-and-preserve"),
    pytest.param({"type": "object", "x-kubernetes-embedded-resource": True},
                 [f"{P}.properties: Required value: must not be empty if x-kubernetes-embedded-resource is true "
                  "without x-kubernetes-preserve-unknown-fields"], id="embedded-without-properties"),
    pytest.param({"type": "array", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True},
                 [f'{P}.items: Required value: must be specified',
                  f'{P}.type: Invalid value: "array": must be object at the root',
                  f'{P}.type: Invalid value: "array": must be object if x-kubernetes-embedded-resource is true'],
                 id="embedded-array"),
    pytest.param({"type": "object", "properties": {"a": {"type": "string"}},
                  "allOf": [{"properties": {"b": {"minLength": 1}}}]},
                 [f"{P}.properties[b]: Required value: because it is defined in {P}.allOf[0].properties[b]"],
                 id="completeness"),
    pytest.param({"type": "object", "properties": {"foo": {"type": "string"}},
                  "not": {"type": "string", "title": "hello", "nullable": True}},
                 [f"{P}.not.nullable: Forbidden: must be false to be structural",
                  f"{P}.not.title: Forbidden: must be empty to be structural",
                  f"{P}.not.type: Forbidden: must be empty to be structural"], id="nested-generics"),
    pytest.param({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
                 [f"{P}.properties[metadata]: Forbidden: must not specify anything other than name and "
                  "generateName, but metadata is implicitly specified"], id="metadata"),
    pytest.param({"type": "object", "additionalProperties": {"type": "string"}},
                 [f"{P}.additionalProperties: Forbidden: must not be used at the root"], id="root-additional"),
    pytest.param({"type": "object", "properties": {"s": {"type": "object", "properties": {"a": {"type": "string"}},
                                                         "additionalProperties": {"type": "string"}}}},
                 [f"{P}.properties[s].additionalProperties: Forbidden: additionalProperties and properties are "
                  "mutual exclusive"], id="properties-and-additional"),
    pytest.param({"type": "object", "properties": {"s": {"type": "array", "uniqueItems": True,
                                                         "items": {"type": "string"}}}},
                 [f"{P}.properties[s].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
                  "complexity becomes quadratic"], id="unique-items"),
    pytest.param({"type": "object", "properties": {"s": {"type": "string", "x-kubernetes-preserve-unknown-fields":
                                                         False}}},
                 [f"{P}.properties[s].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or "
                  "undefined"], id="preserve-false"),
    pytest.param({"type": "object", "properties": {"l": {"type": "string", "x-kubernetes-list-type": "bag"}}},
                 [f'{P}.properties[l].type: Invalid value: "string": must be array if x-kubernetes-list-type is '
                  'specified',
                  f'{P}.properties[l].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", '
                  '"set", "map"'], id="list-type"),
    pytest.param({"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k", "z"],
        "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}},
                 [f'{P}.properties[l].x-kubernetes-list-map-keys: Invalid value: []string{{"k", "z"}}: entries must '
                  'all be names of item properties',
                  f"{P}.properties[l].items.properties[k].default: Required value: this property is in "
                  "x-kubernetes-list-map-keys, so it must have a default or be a required property"], id="list-map"),
    pytest.param({"type": "object", "properties": {"s": {"type": "object", "$ref": "#/x", "id": "x"}}},
                 [f"{P}.properties[s].id: Forbidden: id is not supported",
                  f"{P}.properties[s].$ref: Forbidden: $ref is not supported"], id="unsupported-keywords"),
    pytest.param({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 3, "default": 1},
        "o": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 2}}}}}},
                 [f"{P}.properties[spec].properties[n].default: Invalid value: 1: {P}.properties[spec].properties[n]"
                  ".default in body should be greater than or equal to 3",
                  f'{P}.properties[spec].properties[o].default: Invalid value: "object": must not have unknown '
                  'fields'], id="defaults"),
    pytest.param({"type": "object", "properties": {"metadata": {"type": "object", "default": {"name": "x"}}}},
                 [f"{P}.properties[metadata].default: Forbidden: must not be set in top-level metadata"],
                 id="metadata-default"),
])
def test_schema_rules(schema, expected):
    assert _texts(_crd(schema)) == expected


def test_paths_name_the_version_when_schemas_differ():
    crd = _crd({"type": "object"}, versions=("v1", "v2"))
    crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"] = {"type": "object", "properties": {"x": {"type": "frob"}}}
    assert _texts(crd) == ['spec.versions[1].schema.openAPIV3Schema.properties[x].type: Unsupported value: "frob": '
                           'supported values: "array", "boolean", "integer", "number", "object", "string"']


def test_status_subresource_restricts_the_root():
    crd = _crd({"type": "object", "additionalProperties": True, "properties": {}}, subresources={"status": {}})
    assert _texts(crd)[0].startswith(
        f'{P}: Invalid value: "object": only [Description Type Format Title Maximum ExclusiveMaximum Minimum '
        'ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items '
        'Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root')


def test_versions_names_and_scale():
    crd = _crd(versions=("v1", "V2", "v1"), subresources={"scale": {"specReplicasPath": "spec.replicas",
                                                                    "statusReplicasPath": ".spec.replicas"}})
    crd["spec"]["versions"][1]["storage"] = True
    crd["spec"]["names"].update(kind="Foo", listKind="Foo", shortNames=["F"])
    assert _texts(crd) == [
        'spec.versions[1].name: Invalid value: "V2": a DNS-1035 label must consist of lower case alphanumeric '
        "characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
        "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        'spec.versions: Invalid value: "array": must contain unique version names',
        'spec.versions: Invalid value: "array": must have exactly one version marked as storage version',
        'spec.names.shortNames[0]: Invalid value: "F": a DNS-1035 label must consist of lower case alphanumeric '
        "characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
        "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        'spec.names.listKind: Invalid value: "Foo": kind and listKind may not be the same',
        'spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path '
        'starting with .',
        'spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under '
        '.status',
        'status.storedVersions: Invalid value: []string{"v1"}: must have the storage version V2',
    ]


def test_protected_groups_need_approval():
    crd = _crd(group="widgets.k8s.io")
    assert _texts(crd) == ['metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must '
                           'have approval annotation "api-approved.kubernetes.io", see '
                           'https://github.com/kubernetes/enhancements/pull/1111']
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/1"}
    assert _texts(crd) == []
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, experimental"}
    assert _texts(crd) == []


def test_update_rules():
    old = _crd({"type": "object", "properties": {"x": {"type": "frob"}}})  # stored before the rule existed
    old["status"] = {"conditions": [{"type": "Established", "status": "True"}], "storedVersions": ["v1"]}
    new = {**old, "metadata": {**old["metadata"], "finalizers": []}}
    assert _texts(new, old) == []  # an unchanged schema is not judged again
    moved = _crd(versions=("v2",))
    moved["spec"].update(scope="Cluster")
    moved["status"] = old["status"]
    assert _texts(moved, old) == [
        'spec.scope: Invalid value: "Cluster": field is immutable',
        'status.storedVersions: Invalid value: []string{"v1"}: must have the storage version v2',
        'status.storedVersions[0]: Invalid value: "v1": missing from spec.versions; v1 was previously a storage '
        'version, and must remain in spec.versions until a storage migration ensures no data remains persisted in '
        'v1 and removes v1 from status.storedVersions',
    ]


@pytest.mark.parametrize("pattern, error", [
    ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", None),
    (r"^\d+(\.\d+)?[KMG]i?$", None),
    (r"\pL+\z", None),
    ("(?i)abc", None),
    ("[a-z", "error parsing regexp: missing closing ]: `[a-z`"),
    ("(ab", "error parsing regexp: missing closing ): `(ab`"),
    ("ab)", "error parsing regexp: unexpected ): `ab)`"),
    ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
    ("(?=x)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
    (r"(a)\1", r"error parsing regexp: invalid escape sequence: `\1`"),
    ("a{2,1}", "error parsing regexp: invalid repeat count: `{2,1}`"),
    ("[z-a]", "error parsing regexp: invalid character class range: `z-a`"),
])
def test_go_regexp_errors(pattern, error):
    assert goregexp.compile_error(pattern) == error


def test_a_crd_without_a_storage_version():
    crd = _crd()
    crd["spec"]["versions"][0]["storage"] = False
    crd["status"]["storedVersions"] = []  # what creating it leaves
    assert _texts(crd) == [
        'spec.versions: Invalid value: "array": must have exactly one version marked as storage version',
        "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
    ]
