"""The one YAML loader for everything lks reads: request bodies of the Kubernetes API (via
`lks.kube.http.negotiation` and `lks.kube.structural`), kubeconfig files and CLI inputs.

A YAML document can be tiny on the wire and huge once its aliases are expanded (nine levels of
nine aliases are 387 million scalars in 614 bytes). PyYAML shares an anchored value between its
aliases, so loading is cheap, but anything that walks the result (JSON encoding, pruning,
defaulting) expands it. kube-apiserver refuses such documents while decoding them: go-yaml v2
(`decoder.unmarshal`, under `sigs.k8s.io/yaml`) counts every node it decodes and fails with
``yaml: document contains excessive aliasing`` when, past 1,000 decodes and 100 alias-driven
ones, the share decoded through aliases exceeds `_allowed_alias_ratio`. `load` replays that
count on the composed node graph before anything is constructed, and also refuses a document
whose expansion (its scalars' characters, plus one per node) would exceed twice the larger of
its own size and `MIN_EXPANDED_BUDGET`, which only aliases can make it do: without them, each
node takes at least one character of the text besides its scalar's. Errors are `YAMLError`s
worded as go-yaml words them (`message`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

YAMLError = yaml.YAMLError
EXCESSIVE_ALIASING = "document contains excessive aliasing"
MIN_EXPANDED_BUDGET = 3 * 1024 * 1024  # kube-apiserver's body limit; small documents may expand to twice it

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"

# go-yaml's thresholds (decode.go): below 400,000 decodes 99 % may come from aliases, above
# 4,000,000 only 10 %, scaling linearly in between
_RATIO_LOW, _RATIO_HIGH = 400_000, 4_000_000


class Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML as `sigs.k8s.io/yaml` reads it into JSON: timestamps stay the strings JSON has."""


Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_str)


def load(text: bytes | str) -> Any:
    """The single document of `text` (None when empty), checked for alias expansion first."""
    return construct(Loader(text), text)


def construct(loader: Any, text: bytes | str) -> Any:
    """The document `loader` (reading `text`) holds, after `check` of its node graph; disposes
    of the loader. For loaders that note things as they construct (`lks.kube.structural`'s)."""
    try:
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as err:
            if err.problem != "found undefined alias" or err.problem_mark is None:
                raise
            # go-yaml names the anchor (and no line); libyaml's mark points at the alias
            mark = err.problem_mark
            line = _text(text).split("\n")[mark.line][mark.column:]
            name = re.match(r"\*([^\s,\[\]{}]*)", line)
            raise yaml.MarkedYAMLError(problem=f"unknown anchor '{name[1] if name else ''}' referenced") from None
        if node is None:
            return None
        anchors = b"&" in text if isinstance(text, bytes) else "&" in text
        if anchors:  # without an anchor there is no alias: the graph is a tree as long as the text
            check(node, budget=2 * max(len(text), MIN_EXPANDED_BUDGET), text=text)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def message(err: yaml.YAMLError) -> str:
    """go-yaml's text for a YAML error: ``yaml: line 3: mapping values are not allowed in this
    context`` (libyaml, which PyYAML's C loader uses, is what go-yaml was ported from)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    return f"yaml: line {mark.line + 1}: {problem}" if mark is not None else f"yaml: {problem}"


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _allowed_alias_ratio(decodes: int) -> float:
    if decodes <= _RATIO_LOW:
        return 0.99
    if decodes >= _RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decodes - _RATIO_LOW) / (_RATIO_HIGH - _RATIO_LOW)


def _children(node: yaml.Node) -> list[tuple[int, yaml.Node]]:
    """(slot, child) in document order; a mapping's key i is slot 2i, its value 2i + 1."""
    if isinstance(node, yaml.SequenceNode):
        return list(enumerate(node.value))
    if isinstance(node, yaml.MappingNode):
        out = []
        for i, (key, value) in enumerate(node.value):
            out += [(2 * i, key), (2 * i + 1, value)]
        return out
    return []


def _definitions(root: yaml.Node) -> dict[int, tuple[int, int]]:
    """Where each node is written: the (parent, slot) that first reaches it in document order.
    PyYAML gives an alias the anchored node itself, so every other way to reach it is an alias."""
    defined = {id(root): (0, 0)}
    stack = [root]
    while stack:
        node = stack.pop()
        for slot, child in reversed(_children(node)):
            if id(child) not in defined:
                defined[id(child)] = (id(node), slot)
                stack.append(child)
    return defined


def check(root: yaml.Node, *, budget: int, text: bytes | str = "") -> None:
    """Decode `root` as go-yaml would, counting nodes without building anything; raise at the
    first excessive aliasing (or expansion beyond `budget`), and at an alias
    inside its own anchor (`text` only serves to name that anchor)."""
    defined = _definitions(root)
    decodes, aliased, expanded = 1, 0, 0  # the document node counts as one decode
    active: set[tuple[int, int]] = set()  # alias edges being expanded, as go-yaml's d.aliases
    # (node, parent id, slot) to decode, or (None, parent id, slot) where an alias expansion ends
    stack: list[tuple[Any, int, int]] = [(root, 0, 0)]
    scalar, sequence, mapping = yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode
    while stack:
        node, parent, slot = stack.pop()
        if node is None:
            active.discard((parent, slot))
            continue
        edge = (parent, slot)
        steps = 1
        if defined[id(node)] != edge:  # an alias: go-yaml decodes the alias node, then its anchor's
            if edge in active:
                raise yaml.MarkedYAMLError(problem=f"anchor '{_anchor_name(text)}' value contains itself")
            steps = 2
            aliased += 1 if active else 0
            active.add(edge)
            stack.append((None, parent, slot))
        decodes += steps
        if active:
            aliased += 1
            if aliased > 100 and decodes > 1000 and aliased / decodes > _allowed_alias_ratio(decodes):
                raise yaml.MarkedYAMLError(problem=EXCESSIVE_ALIASING)
        kind = type(node)
        if kind is scalar:
            expanded += len(node.value) + 1
            if expanded > budget:
                raise yaml.MarkedYAMLError(problem=EXCESSIVE_ALIASING)
            continue
        expanded += 1
        nid = id(node)
        if kind is sequence:
            stack.extend((child, nid, j) for j, child in reversed(list(enumerate(node.value))))
        elif kind is mapping:
            for i in reversed(range(len(node.value))):
                key, value = node.value[i]
                if key.tag != _MERGE:
                    stack += [(value, nid, 2 * i + 1), (key, nid, 2 * i)]
                elif type(value) is sequence and defined[id(value)] == (nid, 2 * i + 1):
                    # a list of maps to merge: go-yaml decodes its items (not the list), last first
                    stack.extend((child, id(value), j) for j, child in enumerate(value.value))
                else:  # go-yaml never decodes a merge key
                    stack.append((value, nid, 2 * i + 1))


def _anchor_name(text: bytes | str) -> str:
    """The anchor an alias inside its own value names: read again as events, which keep names."""
    open_anchors: list[str | None] = []
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                open_anchors.append(event.anchor)
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                open_anchors.pop()
            elif isinstance(event, yaml.AliasEvent) and event.anchor in open_anchors:
                return event.anchor
    except yaml.YAMLError:
        pass
    return ""
