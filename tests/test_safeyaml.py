"""The shared YAML loader (`lks.safeyaml`): go-yaml's excessive-aliasing rule, replayed on the
node graph before anything is built, and the kubeconfig merge that reads with it."""

from __future__ import annotations

import time

import pytest

from lks import kubeconfig, safeyaml


def laughs(levels: int, fanout: int) -> str:
    """A billion-laughs document: each level a list of `fanout` aliases to the level below."""
    text = "a0: &a0 [" + ", ".join(['"lol"'] * fanout) + "]\n"
    for level in range(1, levels):
        text += f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * fanout) + "]\n"
    return text


def error_of(text: str) -> str:
    with pytest.raises(safeyaml.YAMLError) as err:
        safeyaml.load(text)
    return safeyaml.message(err.value)


def test_go_yaml_accepts_and_refuses_the_same_documents():
    # go-yaml v3.0.4 decodes three levels of ten and refuses four
    assert len(safeyaml.load(laughs(3, 10))["a2"]) == 10
    assert error_of(laughs(4, 10)) == "yaml: document contains excessive aliasing"


def test_nine_levels_of_nine_fail_fast():
    start = time.monotonic()
    assert error_of(laughs(9, 9)) == "yaml: document contains excessive aliasing"
    assert time.monotonic() - start < 5  # it stops counting at the first excessive step, builds nothing


def test_a_few_aliases_of_a_huge_value_are_refused():
    # under go-yaml's counts (101 aliases among ~1,000 nodes) but 100 MB of JSON once expanded
    filler = ", ".join(["x"] * 1000)
    text = f"s: &s {'y' * 1_000_000}\nf: [{filler}]\nl: [{', '.join(['*s'] * 100)}]\n"
    assert error_of(text) == "yaml: document contains excessive aliasing"


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("a: &x {b: *x}\n", "yaml: anchor 'x' value contains itself", id="recursive-map"),
    pytest.param("a: &x [1, [*x]]\n", "yaml: anchor 'x' value contains itself", id="recursive-list"),
    pytest.param("a: 1\nb: *nope\n", "yaml: unknown anchor 'nope' referenced", id="unknown-anchor"),
    pytest.param("a: b: c\n", "yaml: line 1: mapping values are not allowed in this context", id="syntax"),
])
def test_errors_are_worded_as_go_yaml_words_them(text, message):
    assert error_of(text) == message


def test_ordinary_aliases_and_merge_keys_still_work():
    text = "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\nd:\n  <<: [*b, {z: 3}]\ne: [*b, *b]\nt: 2001-01-01\n"
    assert safeyaml.load(text) == {"base": {"x": 1}, "c": {"x": 1, "y": 2}, "d": {"x": 1, "z": 3},
                                   "e": [{"x": 1}, {"x": 1}], "t": "2001-01-01"}
    assert safeyaml.load("") is None


def test_a_kubeconfig_bomb_is_refused_not_expanded():
    new = kubeconfig.build(name="c", server="https://x", ca_pem=b"ca", user="u", credential={"token": "t"})
    with pytest.raises(safeyaml.YAMLError):
        kubeconfig.merge(laughs(9, 9), new, overwrite=False)
