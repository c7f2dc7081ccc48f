"""The Kubernetes CEL environment (lks.kube.cel): each library function, true and false cases
and its errors, compile errors in cel-go's words, optional fields and the authorizer hook."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lks.kube import cel

SELF = {"name": "Hello", "n": 3, "l": [3, 1, 2], "labels": {"a": "b"}, "empty": [], "words": ["a", "b"]}


def run(expression: str, **variables: Any) -> Any:
    return cel.compile(expression).run(variables or {"self": SELF})


def eval_error(expression: str, **variables: Any) -> str:
    with pytest.raises(cel.EvalError) as err:
        run(expression, **variables)
    return str(err.value)


def compile_error(expression: str, variables: tuple[str, ...] = ("self",)) -> str:
    with pytest.raises(cel.CompileError) as err:
        cel.compile(expression, variables)
    return str(err.value)


CASES = [
    # strings
    ("self.name.lowerAscii()", "hello"), ("self.name.upperAscii()", "HELLO"),
    ("'a,b,c'.split(',')", ["a", "b", "c"]), ("'a,b,c'.split(',', 2)", ["a", "b,c"]), ("'abc'.split(',', 0)", []),
    ("['a', 'b'].join()", "ab"), ("['a', 'b'].join('-')", "a-b"),
    ("self.name.indexOf('l')", 2), ("self.name.indexOf('l', 3)", 3), ("self.name.indexOf('z')", -1),
    ("self.name.lastIndexOf('l')", 3), ("self.name.lastIndexOf('l', 2)", 2), ("'hello'.lastIndexOf('')", 5),
    ("self.name.substring(1)", "ello"), ("self.name.substring(1, 3)", "el"),
    ("'aaa'.replace('a', 'b')", "bbb"), ("'aaa'.replace('a', 'b', 2)", "bba"),
    ("'  x \\t'.trim()", "x"), ("'héllo'.charAt(1)", "é"), ("'abc'.charAt(3)", ""), ("'abc'.reverse()", "cba"),
    ("strings.quote('a\"b')", '"a\\"b"'),
    ("'%s has %d items, %.2f%%'.format(['list', 3, 1.5])", "list has 3 items, 1.50%"),
    ("'%x %o %b'.format([255, 8, 5])", "ff 10 101"),
    ("'%s'.format([[1, 'a', true, null]])", "[1, a, true, null]"),
    # string() conversions, cel-go's text (and the Kubernetes types')
    ("string(ip('10.0.0.1'))", "10.0.0.1"), ("string(cidr('10.0.0.0/8'))", "10.0.0.0/8"),
    ("string(url('https://x.dev/a'))", "https://x.dev/a"),
    ("string(1.5) + string(2) + string(true) + string('s')", "1.52trues"), ("string(1e20)", "1e+20"),
    ("string(1234567.0)", "1.234567e+06"), ("string(duration('90s'))", "90s"),
    ("string(duration('1.5s'))", "1.5s"), ("string(timestamp('2020-01-01T00:00:00Z'))", "2020-01-01T00:00:00Z"),
    ("type('a') == string", True), ("type(1) == string", False),
    # lists
    ("self.l.isSorted()", False), ("[1, 2, 2].isSorted()", True), ("['a', 'b'].isSorted()", True),
    ("self.l.sum()", 6), ("[1.5, 2.0].sum()", 3.5), ("self.empty.sum()", 0),
    ("self.l.min()", 1), ("self.l.max()", 3), ("['b', 'a'].min()", "a"),
    ("self.l.indexOf(1)", 1), ("[1, 2, 1].lastIndexOf(1)", 2), ("self.l.indexOf(7)", -1),
    ("self.l.slice(1, 3)", [1, 2]), ("[[1], [2, [3]]].flatten()", [1, 2, [3]]), ("[1, 1, 2].distinct()", [1, 2]),
    ("self.l.sort()", [1, 2, 3]), ("self.l.reverse()", [2, 1, 3]), ("lists.range(3)", [0, 1, 2]),
    ("self.l.first().value()", 3), ("self.empty.last().hasValue()", False),
    # sets
    ("sets.contains([1, 2, 3], [3, 1])", True), ("sets.contains([1, 2], [4])", False),
    ("sets.contains([1], [1.0])", True), ("sets.contains([1], [true])", False),
    ("sets.equivalent([1, 2], [2, 1, 1])", True), ("sets.equivalent([1], [1, 2])", False),
    ("sets.intersects([1, 2], [2, 5])", True), ("sets.intersects([1], [3])", False),
    # regex
    ("'abc 123 def 456'.find('[0-9]+')", "123"), ("'abc'.find('[0-9]+')", ""),
    ("'abc 123 def 456'.findAll('[0-9]+')", ["123", "456"]), ("'a1b2c3'.findAll('[0-9]', 2)", ["1", "2"]),
    ("'abc'.matches('^a.c$')", True), ("'abc'.matches('^b')", False),
    # quantity
    ("quantity('1Gi') == quantity('1024Mi')", True), ("quantity('1G') == quantity('1Gi')", False),
    ("isQuantity('1.5Gi')", True), ("isQuantity('1.5GiB')", False),
    ("quantity('1Gi').isGreaterThan(quantity('1G'))", True), ("quantity('1Gi').isLessThan(quantity('1G'))", False),
    ("quantity('500m').compareTo(quantity('0.5'))", 0), ("quantity('1').compareTo(quantity('2'))", -1),
    ("quantity('1').add(quantity('500m')) == quantity('1500m')", True), ("quantity('1').add(2) == quantity('3')", True),
    ("quantity('1').sub(quantity('2')).sign()", -1), ("quantity('0').sign()", 0),
    ("quantity('1k').asInteger()", 1000), ("quantity('1.5').isInteger()", False), ("quantity('2').isInteger()", True),
    ("quantity('1.5').asApproximateFloat()", 1.5), ("['1', '2Gi', '3'].map(q, quantity(q)).isSorted()", False),
    # url
    ("url('https://user@example.com:8443/a%20b/c?x=1&x=2&y').getScheme()", "https"),
    ("url('https://example.com:8443/a').getHost()", "example.com:8443"),
    ("url('https://[::1]:80/').getHost()", "[::1]:80"), ("url('https://[::1]:80/').getHostname()", "::1"),
    ("url('https://example.com:8443/a').getPort()", "8443"), ("url('https://example.com/a').getPort()", ""),
    ("url('https://example.com/a%20b').getEscapedPath()", "/a%20b"),
    ("url('https://example.com/?x=1&x=2&y=').getQuery()", {"x": ["1", "2"], "y": [""]}),
    ("url('/relative/path').getHost()", ""), ("isURL('https://example.com')", True), ("isURL('example.com')", False),
    # ip and cidr
    ("isIP('10.0.0.1')", True), ("isIP('10.0.0.01')", False), ("isIP('::ffff:1.2.3.4')", False),
    ("ip('10.0.0.1').family()", 4), ("ip('fd00::1').family()", 6), ("ip('127.0.0.1').isLoopback()", True),
    ("ip('0.0.0.0').isUnspecified()", True), ("ip('169.254.1.1').isLinkLocalUnicast()", True),
    ("ip('224.0.0.1').isLinkLocalMulticast()", True), ("ip('ff02::1').isLinkLocalMulticast()", True),
    ("ip('10.0.0.1').isGlobalUnicast()", True), ("ip('255.255.255.255').isGlobalUnicast()", False),
    ("ip.isCanonical('2001:db8::1')", True), ("ip.isCanonical('2001:DB8::1')", False),
    ("ip('10.0.0.1') == ip('10.0.0.1')", True),
    ("isCIDR('10.0.0.0/8')", True), ("isCIDR('10.0.0.0')", False),
    ("cidr('10.0.0.0/8').containsIP('10.1.2.3')", True), ("cidr('10.0.0.0/8').containsIP(ip('11.0.0.1'))", False),
    ("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')", True), ("cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')", False),
    ("cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8')", True), ("cidr('10.0.0.0/8').prefixLength()", 8),
    ("cidr('10.1.2.3/8').ip() == ip('10.1.2.3')", True),
    # semver
    ("semver('1.2.3').major() + semver('1.2.3').minor() + semver('1.2.3').patch()", 6),
    ("isSemver('1.2')", False), ("isSemver('v1.2', true)", True), ("semver('v1.2', true) == semver('1.2.0')", True),
    ("semver('1.2.3-alpha.1').isLessThan(semver('1.2.3'))", True),
    ("semver('1.2.3-alpha.2').isGreaterThan(semver('1.2.3-alpha.10'))", False),
    ("semver('1.10.0').compareTo(semver('1.9.0'))", 1), ("semver('1.2.3+build') == semver('1.2.3')", True),
    # format
    ("format.dns1123Label().validate('my-name').hasValue()", False),
    ("format.dns1123Label().validate('My_Name').value().size()", 1),
    ("format.named('dns1123Subdomain').value().validate('a.b').hasValue()", False),
    ("format.named('nope').hasValue()", False), ("format.labelValue().validate('x').hasValue()", False),
    ("format.dns1123LabelPrefix().validate('my-').hasValue()", False),
    ("format.uuid().validate('x').hasValue()", True),
    # optional syntax
    ("self.?missing.orValue(5)", 5), ("self.?n.orValue(5)", 3), ("self.?labels.?a.orValue('x')", "b"),
    ("self.?labels.?zz.orValue('x')", "x"), ("self.?missing.?deeper.hasValue()", False),
    ("self.l[?1].orValue(0)", 1), ("self.l[?9].orValue(0)", 0), ("self.labels[?'a'].value()", "b"),
    ("has(self.labels.a)", True), ("has(self.labels.z)", False),
    ("optional.of(1).or(optional.none()).value()", 1),
    # cel.bind and the two-variable comprehensions, expanded into what the interpreter has
    ("cel.bind(x, self.l.size(), x * x)", 9), ("cel.bind(a, 1, cel.bind(b, a + 1, a + b))", 3),
    ("self.l.all(i, v, v >= i)", True), ("self.l.all(i, v, v > i)", False), ("self.l.exists(i, v, i == 2 && v == 2)", True),
    ("self.l.exists_one(i, v, v == 1)", True), ("self.labels.all(k, v, k == 'a' && v == 'b')", True),
    ("self.l.transformList(i, v, v * 10 + i)", [30, 11, 22]), ("self.l.transformList(i, v, i > 0, v)", [1, 2]),
    ("self.labels.transformMap(k, v, v + k)", {"a": "ba"}), ("self.labels.transformMap(k, v, k != 'a', v)", {}),
    ("self.words.transformMapEntry(i, v, {v: i})", {"a": 0, "b": 1}),
    ("self.l.all(i, v, self.words.exists(j, w, j == i || v == 3))", False),
    ("[1, 2, 3].map(x, x > 1, x * 2)", [4, 6]),
]


@pytest.mark.parametrize(("expression", "expected"), [pytest.param(e, r, id=e) for e, r in CASES])
def test_functions(expression: str, expected: Any) -> None:
    result = run(expression)
    assert result == expected and type(result) is type(expected)


ERRORS = [
    ("self.missing", "no such key: missing"),
    ("1 / 0", "division by zero"),
    ("'abc'.charAt(4)", "index out of range: 4"),
    ("'abc'.indexOf('a', 9)", "index out of range: 9"),
    ("'abc'.substring(2, 1)", "invalid substring range. start: 2, end: 1"),
    ("'abc'.substring(-1)", "index out of range: -1"),
    ("self.empty.min()", "min called on empty list"),
    ("self.empty.max()", "max called on empty list"),
    ("self.l.slice(2, 1)", "cannot slice(2, 1), start index must be less than or equal to end index"),
    ("self.l.slice(0, 9)", "cannot slice(0, 9), list is length 3"),
    ("self.l.slice(-1, 2)", "cannot slice(-1, 2), negative indexes not supported"),
    ("quantity('1kK')", "unable to parse quantity's suffix"), ("quantity('12x')", "quantities must match the regular expression"),
    ("quantity('1.5').asInteger()", "cannot convert value to integer"),
    ("'abc'.find('[')", "Illegal regex: error parsing regexp: missing closing ]: `[`"),
    ("ip('10.0.0.01')", "IP Address '10.0.0.01' parse error during conversion from string: "),
    ("cidr('10.0.0.0')", "network address '10.0.0.0' parse error during conversion from string: "),
    ("url('example.com')", "URL parse error during conversion from string: parse 'example.com': invalid URI for request"),
    ("[1, 'a'].isSorted()", "no such overload"),
    ("'%d'.format(['x'])", "error during formatting: integer clause can only be used on integers, was given string"),
    ("self.l.value()", "no such overload"),
    ("self.name + 1", "no such overload"),
    ("semver('01.2.3')", "error converting string to semver: '01.2.3' is not a valid semantic version"),
    ("semver('1.0.0').isLessThan(quantity('1'))", "no such overload"),
    ("[1, 1].transformMapEntry(i, v, {v: i})", "insert failed: key 1 already exists"),
]


@pytest.mark.parametrize(("expression", "message"), [pytest.param(e, m, id=e) for e, m in ERRORS])
def test_errors(expression: str, message: str) -> None:
    assert eval_error(expression).startswith(message)


def test_undeclared_reference_as_cel_go_reports_it() -> None:
    assert compile_error("self.a == foo") == (
        "ERROR: <input>:1:11: undeclared reference to 'foo' (in container '')\n | self.a == foo\n | ..........^")
    assert compile_error("object.spec", ("self",)).startswith("ERROR: <input>:1:1: undeclared reference to 'object'")
    assert "undeclared reference to 'bogus'" in compile_error("self.name.bogus()")
    assert "undeclared reference to 'nope'" in compile_error("nope(1)")
    assert "undeclared reference to 'z'" in compile_error("self.l.all(x, x == z)")
    assert "undeclared reference to 'z'" in compile_error("cel.bind(y, z, y)")
    assert "undeclared reference to 'w'" in compile_error("self.l.all(i, v, v == w)")


def test_declared_names_compile() -> None:
    for expression in ("self.l.all(x, x > 0) && self.l.exists_one(y, y == 1)", "type(self) == map",
                       "sets.contains([1], [1])", "format.dns1123Label().validate('a').hasValue()",
                       "self.l.map(i, i * 2).filter(j, j > 2).size() == 2", "self.?a.orValue(1) == 1",
                       "'x' in ['x'] && true != false && null == null", "int('1') + size(self.l)"):
        cel.compile(expression, ("self",))


def test_syntax_errors_as_cel_go_reports_them() -> None:
    assert compile_error("self.a ==") == (
        "ERROR: <input>:1:10: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', "
        "'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | self.a ==\n | .........^")
    assert compile_error("(self.a").startswith("ERROR: <input>:1:8: Syntax error: missing ')' at '<EOF>'")
    # positions refer to what was written, also when optional syntax was rewritten
    assert compile_error("self.?a.orValue(1) ==").startswith("ERROR: <input>:1:")


def test_compile_is_cached() -> None:
    assert cel.compile("self.n + 1", ("self",)) is cel.compile("self.n + 1", ("self",))
    assert cel.compile("self.n + 1", ("self",)).run({"self": {"n": 1}}) == 2


def test_program_references() -> None:
    program = cel.compile("self == oldSelf", ("self", "oldSelf"))
    assert program.references("oldSelf") and not cel.compile("self.x", ("self", "oldSelf")).references("oldSelf")


def test_activation_is_shared_between_programs() -> None:
    act = cel.activation({"object": {"spec": {"replicas": 3}}})
    assert cel.compile("object.spec.replicas > 2").run(act) is True
    assert cel.compile("object.spec.replicas.string()".replace(".string()", "") + " == 3").run(act) is True


def _decide(check: cel.Check) -> cel.Decision:
    if check.path:
        return cel.Decision("Allow" if check.path == "/healthz" else "NoOpinion")
    if check.service_account == ("ns", "robot"):
        return cel.Decision("Deny", "robots may not")
    ok = (check.group, check.resource, check.namespace, check.verb) == ("apps", "deployments", "prod", "create")
    return cel.Decision("Allow" if ok else "NoOpinion", "rbac says so")


AUTHZ = [
    ("authorizer.group('apps').resource('deployments').namespace('prod').check('create').allowed()", True),
    ("authorizer.group('apps').resource('deployments').namespace('dev').check('create').allowed()", False),
    ("authorizer.group('apps').resource('deployments').namespace('prod').check('create').reason()", "rbac says so"),
    ("authorizer.path('/healthz').check('get').allowed()", True),
    ("authorizer.path('/metrics').check('get').allowed()", False),
    ("authorizer.serviceAccount('ns', 'robot').group('').resource('pods').check('get').reason()", "robots may not"),
    ("authorizer.requestResource.check('create').allowed()", True),
    ("authorizer.requestResource.subresource('scale').check('create').errored()", False),
]


@pytest.mark.parametrize(("expression", "expected"), [pytest.param(e, r, id=e) for e, r in AUTHZ])
def test_authorizer_sync(expression: str, expected: Any) -> None:
    request = cel.Check(group="apps", resource="deployments", namespace="prod")
    assert run(expression, authorizer=cel.Authorizer(_decide, request_resource=request)) == expected


def test_authorizer_async_resolves_each_check_once() -> None:
    asked: list[cel.Check] = []

    async def decide(check: cel.Check) -> cel.Decision:
        asked.append(check)
        return _decide(check)

    program = cel.compile("authorizer.group('apps').resource('deployments').namespace('prod').check('create').allowed()"
                          " && !authorizer.path('/metrics').check('get').allowed()")
    authz = cel.Authorizer(decide)
    assert asyncio.run(program.run_async({"authorizer": authz})) is True
    assert [c.verb for c in asked] == ["create", "get"]
    with pytest.raises(cel.EvalError, match="authorizer check not resolved"):
        program.run({"authorizer": cel.Authorizer(decide)})


def test_errored_decision() -> None:
    authz = cel.Authorizer(lambda check: cel.Decision("NoOpinion", error="webhook down"))
    assert run("authorizer.path('/x').check('get').error()", authorizer=authz) == "webhook down"
    assert run("authorizer.path('/x').check('get').errored()", authorizer=authz) is True
