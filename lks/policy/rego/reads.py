"""What of the review a template can read, so that the rest need not be handed to rego-cpp at all:
`paths` (the tree of every static path under `input.review`, what `program.py` cuts the review
down to), or, when some module reads the review whole, the parts of the object it never names
(`unread`).

Converting the review is most of an evaluation's cost, and a stored object carries much that
templates do not read: `metadata.managedFields` (a third of a stored Pod) and `status`. A part
is left out only when no module of the template can reach it: every use of `input` in the
translated source is a static path (`.name` or `["name"]` steps) that goes past the object (and
its metadata) into another field, and no module names the part anywhere. Any other use of
`input`, `input.review`, the object or its metadata (passed whole, aliased, imported, indexed
with a variable) keeps everything, so a result can never differ. `program.py` applies it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import orjson

from .lexer import IDENT, NL, PUNCT, STRING, WS, tokenize

DROPPABLE = frozenset(("managedFields", "status"))
_OBJECTS = ("object", "oldObject")


def unread(sources: Iterable[str]) -> frozenset[str]:
    """The parts of `DROPPABLE` that none of the (v1) `sources` can read."""
    left = set(DROPPABLE)
    for source in sources:
        toks = [t for t in tokenize(source, "template") if t.kind not in (WS, NL) and not t.trivia]
        for i, t in enumerate(toks):
            if t.kind == IDENT and t.text in left or t.kind == STRING and t.text[1:-1] in left:
                left.discard(t.text if t.kind == IDENT else t.text[1:-1])  # named: may be read
            if t.kind != IDENT or t.text != "input" or (i and toks[i - 1].text == "."):
                continue
            left -= _reaches(_path(toks, i + 1))
            if not left:
                return frozenset()
    return frozenset(left)


def _path(toks: list, i: int) -> list[str]:
    """The static steps of a reference from token `i` on (`.a`, `["a"]`)."""
    out: list[str] = []
    while i + 1 < len(toks):
        if toks[i].text == "." and toks[i + 1].kind == IDENT:
            out.append(toks[i + 1].text)
            i += 2
        elif toks[i].text == "[" and toks[i + 1].kind == STRING and i + 2 < len(toks) \
                and toks[i + 2].kind == PUNCT and toks[i + 2].text == "]" and toks[i + 1].text.startswith('"'):
            out.append(toks[i + 1].text[1:-1])
            i += 3
        else:
            break
    return out


def _reaches(path: list[str]) -> set[str]:
    """The droppable parts a reference to `input.<path>` may see."""
    if not path or path[0] != "review":
        return set(DROPPABLE) if not path else set()
    if len(path) < 3:
        return set(DROPPABLE) if len(path) == 1 or path[1] in _OBJECTS else set()
    if path[1] not in _OBJECTS:
        return set()
    if path[2] == "status":
        return {"status"}
    if path[2] != "metadata":
        return set()
    if len(path) == 3 or path[3] == "managedFields":
        return {"managedFields"}
    return set()


def pruned(review: dict[str, Any], parts: frozenset[str]) -> dict[str, Any]:
    """`review` with `parts` left out of its object and old object (copies; `review` is kept)."""
    if not parts:
        return review
    out = dict(review)
    for key in _OBJECTS:
        obj = review.get(key)
        if not isinstance(obj, dict):
            continue
        obj = dict(obj)
        if "status" in parts:
            obj.pop("status", None)
        meta = obj.get("metadata")
        if "managedFields" in parts and isinstance(meta, dict) and "managedFields" in meta:
            obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        out[key] = obj
    return out


PARAMETERS = "lks.parameters"  # the data document a constraint's parameters are moved to


def parameters_as_data(source: str) -> str | None:
    """`source` reading `data["lks.parameters"]` where it read `input.parameters` (same bytes and
    lines otherwise), so that one input serves every constraint; None if some use of `input` is
    not a static path (the parameters could be reached another way)."""
    toks = tokenize(source, "template")
    code = [i for i, t in enumerate(toks) if not t.trivia and t.kind != NL]
    for n, i in enumerate(code):
        t = toks[i]
        if t.kind != IDENT or t.text != "input" or (n and toks[code[n - 1]].text == "."):
            continue
        steps = _path([toks[j] for j in code[n + 1 : n + 4]], 0)
        if not steps:
            return None
        if steps[0] != "parameters":
            continue
        t.text = "data"
        step = toks[code[n + 2]]
        if step.kind == STRING:  # input["parameters"]
            step.text = f'"{PARAMETERS}"'
        else:  # input.parameters
            toks[code[n + 1]].text = ""
            step.text = f'["{PARAMETERS}"]'
    return "".join(t.text for t in toks)


# What of `input.review` a template can read, as a tree of field names: a name -> what under it
# is read, None for all of it. Every use of `input` in the translated source is a static path
# (`.name` or `["name"]` steps) or the template reads all of it, so a field of the review no
# path reaches is never read, at any depth: the review is cut down to the tree (`kept`), which
# is what converting it costs (a stored Pod's defaulted spec, tolerations, metadata ...).
Tree = dict[str, "Tree | None"]


def paths(sources: Iterable[str]) -> Tree | None:
    """The tree of `input.review` that the (v1) `sources` can read; None if all of it."""
    tree: Tree = {}
    for source in sources:
        toks = [t for t in tokenize(source, "template") if t.kind not in (WS, NL) and not t.trivia]
        for i, t in enumerate(toks):
            if t.kind != IDENT or t.text != "input" or (i and toks[i - 1].text == "."):
                continue
            path = _path(toks, i + 1)
            if not path or path == ["review"]:
                return None
            if path[0] == "review":
                _add(tree, path[1:])
    return tree


def _add(tree: Tree, steps: list[str]) -> None:
    node = tree
    for step in steps[:-1]:
        if step in node and node[step] is None:
            return  # all of it is read already
        node = node.setdefault(step, {})  # type: ignore[assignment]
    node[steps[-1]] = None


def union(trees: Iterable[Tree | None]) -> Tree | None:
    """A tree reading what any of `trees` reads."""
    out: Tree = {}
    for tree in trees:
        if tree is None:
            return None
        _merge(out, tree)
    return out


def _merge(into: Tree, tree: Tree) -> None:
    for k, sub in tree.items():
        if sub is None or into.get(k, {}) is None:
            into[k] = None
        elif k in into:
            _merge(into[k], sub)  # type: ignore[arg-type]
        else:
            into[k] = copy.deepcopy(sub)


def kept(value: Any, tree: Tree | None) -> Any:
    """`value` with only what `tree` names (copies; `value` is kept)."""
    if tree is None or type(value) is not dict:
        return value
    return {k: kept(value[k], sub) for k, sub in tree.items() if k in value}


def key(tree: Tree | None, unread: frozenset[str]) -> bytes:
    """What tells two readers' inputs apart: the same key, the same input."""
    return orjson.dumps([tree, sorted(unread) if tree is None else []], option=orjson.OPT_SORT_KEYS)
