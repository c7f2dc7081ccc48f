"""Decode-time checks (`lks.kube.structural`) against the messages kube-apiserver gives.

Expected strings come from upstream: `sigs.k8s.io/json` strict errors, Go's `encoding/json`
`UnmarshalTypeError`, `resource.ParseQuantity`, `base64.CorruptInputError`, `time.ParseError`,
`runtime.NewStrictDecodingError` and the apiserver handlers (`transformDecodeError`,
`addStrictDecodingWarnings`, the patch handler).
"""

import copy
from fractions import Fraction

import pytest

from lks.kube import catalog, structural
from lks.kube.schema import Schema

DEFS = catalog.load().schemas
POD = Schema.of(DEFS, "io.k8s.api.core.v1.Pod")
DEPLOYMENT = Schema.of(DEFS, "io.k8s.api.apps.v1.Deployment")
SECRET = Schema.of(DEFS, "io.k8s.api.core.v1.Secret")
LEASE = Schema.of(DEFS, "io.k8s.api.coordination.v1.Lease")


def pod(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def test_valid_pod_has_no_problems():
    obj = pod(restartPolicy="Never", terminationGracePeriodSeconds=5)
    obj["spec"]["containers"][0].update(ports=[{"containerPort": 80, "protocol": "TCP"}],
                                        resources={"limits": {"cpu": 1, "memory": "1Gi"}},
                                        env=[{"name": "A", "value": "b"}])
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    assert structural.check(obj, POD) == ([], [])


def test_unknown_fields_use_strict_paths():
    obj = pod(bar={})
    obj["metadata"]["foo"] = 1
    obj["spec"]["containers"][0]["foo"] = 2
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPortt": 1}]
    obj["spec"]["nodeSelector"] = {"a": "b"}  # map keys are never unknown
    unknown, type_errors = structural.check(obj, POD)
    assert unknown == ["metadata.foo", "spec.containers[0].foo", "spec.containers[0].ports[0].hostPortt", "spec.bar"]
    assert type_errors == []
    assert structural.unknown_field_errors(unknown[:1]) == ['unknown field "metadata.foo"']


def test_field_names_are_case_sensitive():
    unknown, _ = structural.check({"Spec": {}, "spec": {"Containers": []}}, POD)
    assert unknown == ["Spec", "spec.Containers"]


@pytest.mark.parametrize("obj, message", [
    pytest.param({"spec": {"containers": 5}}, "json: cannot unmarshal number into Go struct field "
                 "PodSpec.spec.containers of type []v1.Container", id="list-gets-number"),
    pytest.param({"spec": {"containers": {"name": "c"}}}, "json: cannot unmarshal object into Go struct field "
                 "PodSpec.spec.containers of type []v1.Container", id="list-gets-object"),
    pytest.param({"spec": {"containers": ["c"]}}, "json: cannot unmarshal string into Go struct field "
                 "PodSpec.spec.containers of type v1.Container", id="element-gets-string"),
    pytest.param({"metadata": {"labels": {"a": 1}}}, "json: cannot unmarshal number into Go struct field "
                 "ObjectMeta.metadata.labels of type string", id="map-value"),
    pytest.param({"metadata": {"labels": {"a": True}}}, "json: cannot unmarshal bool into Go struct field "
                 "ObjectMeta.metadata.labels of type string", id="map-value-bool"),
    pytest.param({"spec": {"containers": [{"args": ["a", 1]}]}}, "json: cannot unmarshal number into Go struct "
                 "field Container.spec.containers.args of type string", id="string-list"),
    pytest.param({"spec": {"containers": [{"env": [{"name": "A", "value": 9}]}]}}, "json: cannot unmarshal "
                 "number into Go struct field EnvVar.spec.containers.env.value of type string", id="env-value"),
    pytest.param({"spec": {"containers": [{"securityContext": {"runAsUser": "root"}}]}}, "json: cannot unmarshal "
                 "string into Go struct field SecurityContext.spec.containers.securityContext.runAsUser of type "
                 "int64", id="int64-gets-string"),
    pytest.param({"spec": {"containers": [{"ports": [{"containerPort": 3000000000}]}]}}, "json: cannot unmarshal "
                 "number 3000000000 into Go struct field ContainerPort.spec.containers.ports.containerPort of "
                 "type int32", id="int32-overflow"),
    pytest.param({"spec": {"containers": [{"ports": [{"containerPort": 80.5}]}]}}, "json: cannot unmarshal number "
                 "80.5 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32",
                 id="int-gets-fraction"),
    pytest.param({"spec": {"tolerations": [{"value": True}]}}, "json: cannot unmarshal bool into Go struct field "
                 "Toleration.spec.tolerations.value of type string", id="bool"),
    pytest.param({"spec": {"restartPolicy": 1}}, "json: cannot unmarshal number into Go struct field "
                 "PodSpec.spec.restartPolicy of type v1.RestartPolicy", id="named-string-type"),
    pytest.param({"spec": "x"}, "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec",
                 id="top-level-field"),
    pytest.param({"spec": {"hostNetwork": "yes"}}, "json: cannot unmarshal string into Go struct field "
                 "PodSpec.spec.hostNetwork of type bool", id="bool-gets-string"),
    pytest.param({"metadata": {"creationTimestamp": 5}}, "json: cannot unmarshal number into Go struct field "
                 "ObjectMeta.metadata.creationTimestamp of type string", id="time-gets-number"),
    pytest.param({"metadata": {"creationTimestamp": "2024-13-01T00:00:00Z"}},
                 'parsing time "2024-13-01T00:00:00Z": month out of range', id="time-range"),
    pytest.param({"metadata": {"creationTimestamp": "yesterday"}}, 'parsing time "yesterday" as '
                 '"2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"', id="time-layout"),
    pytest.param({"spec": {"containers": [{"resources": {"limits": {"cpu": "1x"}}}]}},
                 "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                 id="quantity"),
    pytest.param({"spec": {"overhead": {"cpu": "1iG"}}}, "unable to parse quantity's suffix", id="quantity-suffix"),
    pytest.param([], "json: cannot unmarshal array into Go value of type v1.Pod", id="not-an-object"),
])
def test_type_errors(obj, message):
    unknown, type_errors = structural.check(obj, POD)
    assert type_errors[0] == message
    assert structural.decode_error("Pod", "v1", type_errors[0]).status()["message"] == \
        f'Pod in version "v1" cannot be handled as a Pod: {message}'


def test_int_or_string_and_nested_structs():
    obj = {"spec": {"replicas": "3", "strategy": {"rollingUpdate": {"maxSurge": 1.5, "maxUnavailable": "25%"}}}}
    _, type_errors = structural.check(obj, DEPLOYMENT)
    # the int-or-string error comes from IntOrString.UnmarshalJSON, which stops decoding: it wins
    assert type_errors == [
        "json: cannot unmarshal number 1.5 into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate"
        ".maxSurge of type int32",
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
    ]
    assert structural.check({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": "1"}}}},
                            DEPLOYMENT) == ([], [])


def test_quantities_may_be_numbers_and_win_over_earlier_type_errors():
    assert structural.check(pod(overhead={"cpu": 0.5, "memory": 1024}), POD) == ([], [])
    obj = {"metadata": {"labels": {"a": 1}}, "spec": {"overhead": {"cpu": "x"}}}
    assert structural.check(obj, POD)[1][0].startswith("quantities must match")


def test_base64_bytes():
    assert structural.check({"data": {"a": "YWJj", "b": "YQ=="}}, SECRET) == ([], [])
    assert structural.check({"data": {"a": "YWJ"}}, SECRET)[1] == ["illegal base64 data at input byte 0"]
    assert structural.check({"data": {"a": 5}}, SECRET)[1] == [
        "json: cannot unmarshal number into Go struct field Secret.data of type []uint8"]


def test_micro_time_needs_microseconds():
    assert structural.check({"spec": {"renewTime": "2024-01-01T00:00:00.000000Z"}}, LEASE) == ([], [])
    assert structural.check({"spec": {"renewTime": "2024-01-01T00:00:00Z"}}, LEASE)[1] == [
        'parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"']


def test_nulls_are_accepted_and_pruned():
    obj = pod(nodeName=None, restartPolicy=None)
    obj["metadata"]["labels"] = {"a": None}
    assert structural.check(obj, POD) == ([], [])
    structural.prune(obj, POD)
    assert "nodeName" not in obj["spec"] and "restartPolicy" not in obj["spec"]
    assert obj["metadata"]["labels"] == {"a": ""}  # Go stores the zero value under the key


def test_prune_drops_unknown_fields_only():
    obj = pod(bar={"x": 1})
    obj["spec"]["containers"][0]["foo"] = 1
    expected = copy.deepcopy(obj)
    del expected["spec"]["bar"], expected["spec"]["containers"][0]["foo"]
    structural.prune(obj, POD)
    assert obj == expected


def test_preserve_unknown_fields_and_free_form_values():
    defs = {"io.example.v1.Thing": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"known": {"type": "string"}},
                 "x-kubernetes-preserve-unknown-fields": True},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "strict": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }}}
    schema = Schema.of(defs, "io.example.v1.Thing")
    obj = {"spec": {"known": "x", "other": 1}, "free": {"anything": [1]}, "strict": {"a": 1, "b": 2}, "top": 1}
    assert structural.check(obj, schema)[0] == ["strict.b", "top"]
    structural.prune(obj, schema)
    assert obj == {"spec": {"known": "x", "other": 1}, "free": {"anything": [1]}, "strict": {"a": 1}}


def test_raw_extensions_are_not_checked():
    schema = Schema.of(DEFS, "io.k8s.api.apps.v1.ControllerRevision")
    assert structural.check({"data": {"anything": {"goes": [1]}}, "revision": 1}, schema) == ([], [])


# --- duplicate fields ----------------------------------------------------------------------------

def test_json_duplicates_with_paths_last_value_wins():
    body = (b'{"metadata": {"name": "a", "name": "b"}, "spec": {"containers": [{"name": "c", "image": "x", '
            b'"image": "y", "image": "z"}]}, "kind": "Pod", "kind": "Pod"}')
    obj, dups = structural.parse_json_strict(body)
    assert dups == ['duplicate field "metadata.name"', 'duplicate field "spec.containers[0].image"',
                    'duplicate field "kind"']
    assert obj["metadata"] == {"name": "b"} and obj["spec"]["containers"][0]["image"] == "z"
    assert type(obj["metadata"]) is dict


def test_json_without_duplicates():
    assert structural.parse_json_strict('{"a": [1, {"b": 2.5}], "c": null}') == (
        {"a": [1, {"b": 2.5}], "c": None}, [])
    with pytest.raises(ValueError):
        structural.parse_json_strict(b'{"a": NaN}')
    with pytest.raises(ValueError):
        structural.parse_json_strict(b'{"a": ')


def test_yaml_duplicates_in_line_order():
    body = b"kind: Pod\nmetadata:\n  name: a\n  name: b\nmetadata:\n  labels: {x: y}\nspec: {}\n"
    obj, errs = structural.parse_yaml_strict(body)
    assert errs == ['yaml: unmarshal errors:\n  line 4: key "name" already set in map\n'
                    '  line 6: key "metadata" already set in map']
    assert obj == {"kind": "Pod", "metadata": {"labels": {"x": "y"}}, "spec": {}}
    assert structural.warnings(errs + ['unknown field "spec.foo"']) == [
        'line 4: key "name" already set in map', 'line 6: key "metadata" already set in map',
        'unknown field "spec.foo"']


def test_yaml_values_as_json_has_them():
    obj, errs = structural.parse_yaml_strict(b"replicas: 3.0\nratio: 0.5\ndate: 2024-01-01\non: yes\n")
    assert errs == []
    assert obj == {"replicas": 3, "ratio": 0.5, "date": "2024-01-01", True: True}


# --- wording -------------------------------------------------------------------------------------

def test_strict_error_and_decode_error():
    msgs = ['duplicate field "metadata.name"'] + structural.unknown_field_errors(["spec.replica", "template"])
    err = structural.decode_error("Deployment", "v1", structural.strict_error(msgs))
    assert err.code == 400 and err.reason == "BadRequest"
    assert err.message == ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
                           'duplicate field "metadata.name", unknown field "spec.replica", unknown field "template"')


def test_patch_strict_error():
    err = structural.patch_strict_error('{"spec":{"foo":1}}', ['unknown field "spec.foo"'])
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == (' "" is invalid: patch: Invalid value: "{\\"spec\\":{\\"foo\\":1}}": strict decoding '
                           'error: unknown field "spec.foo"')
    assert err.status()["details"] == {"causes": [{
        "reason": "FieldValueInvalid", "field": "patch",
        "message": 'Invalid value: "{\\"spec\\":{\\"foo\\":1}}": strict decoding error: unknown field "spec.foo"'}]}


def test_go_sprint_of_a_patch():
    patch = {"spec": {"replicas": 3, "template": {"a": [1, "x", None, True, 0.5]}}, "b": 1e7}
    assert structural.go_sprint(patch) == "map[b:1e+07 spec:map[replicas:3 template:map[a:[1 x <nil> true 0.5]]]]"


# --- the Go parsers ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value, canonical", [
    ("1", 1, "1"), ("0", 0, "0"), ("0.5", Fraction(1, 2), "500m"), ("1500m", Fraction(3, 2), "1500m"),
    ("1000m", 1, "1"), ("1000", 1000, "1k"), ("2k", 2000, "2k"), ("1Ki", 1024, "1Ki"), ("1024Mi", 2**30, "1Gi"),
    ("1.5Gi", 1536 * 2**20, "1536Mi"), ("512", 512, "512"), ("1e3", 1000, "1e3"), ("0.0000000001", Fraction(1, 10**9),
                                                                                    "1n"),
    ("-1", -1, "-1"), ("+1", 1, "1"), (" 2 ", 2, "2"), (1.5, Fraction(3, 2), "1500m"), (100, 100, "100"),
])
def test_quantities(text, value, canonical):
    q = structural.parse_quantity(text)
    assert q.value == value and str(q) == canonical


@pytest.mark.parametrize("text, message", [
    ("", structural.QUANTITY_FORMAT_MSG), ("abc", structural.QUANTITY_FORMAT_MSG), ("1.2.3", structural.QUANTITY_FORMAT_MSG),
    ("1x", structural.QUANTITY_FORMAT_MSG), ("1Gx", structural.QUANTITY_FORMAT_MSG), ("1iG", structural.QUANTITY_SUFFIX_MSG),
    ("1e", structural.QUANTITY_SUFFIX_MSG), (True, structural.QUANTITY_FORMAT_MSG),
])
def test_bad_quantities(text, message):
    with pytest.raises(structural.QuantityError, match="^" + __import__("re").escape(message) + "$"):
        structural.parse_quantity(text)


@pytest.mark.parametrize("text, error", [
    ("dGVzdA==", None), ("dGVzdA=\n=", None), ("", None), ("dGVzdA", "illegal base64 data at input byte 4"),
    ("abc", "illegal base64 data at input byte 0"), ("a===", "illegal base64 data at input byte 1"),
    ("dGVz!A==", "illegal base64 data at input byte 4"), ("dGVzdA==x", "illegal base64 data at input byte 8"),
])
def test_base64_errors(text, error):
    assert structural.base64_error(text) == error


@pytest.mark.parametrize("text, error", [
    ("2024-01-01T00:00:00Z", None), ("2024-01-01T00:00:00.123+01:00", None),
    ("", 'parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006"'),
    ("2024-01-01", 'parsing time "2024-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"'),
    ("2024-01-01 00:00:00Z",
     'parsing time "2024-01-01 00:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 00:00:00Z" as "T"'),
    ("2024-02-30T00:00:00Z", 'parsing time "2024-02-30T00:00:00Z": day out of range'),
    ("2024-01-01T24:00:00Z", 'parsing time "2024-01-01T24:00:00Z": hour out of range'),
    ("2024-01-01T00:00:00Zx", 'parsing time "2024-01-01T00:00:00Zx": extra text: "x"'),
    ("2024-01-01T00:00:00", 'parsing time "2024-01-01T00:00:00" as "2006-01-02T15:04:05Z07:00": cannot parse "" as '
                            '"Z07:00"'),
])
def test_time_errors(text, error):
    assert structural.time_error(text) == error


def test_go_quote():
    assert structural.go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
