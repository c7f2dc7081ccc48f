"""What of an activation a policy's expressions can read, found once when the policy is
compiled, so that a request converts only that for CEL: converting a whole Deployment (with
its managedFields) costs more than evaluating `object.spec.replicas <= 5` many times over.

Every access to `object` (or `oldObject`, `params`) starts with a chain of plain field
selections (`object.spec.template.spec.containers`); the value at the end of each chain is kept
whole, and everything no chain reaches is left out. An expression that uses a root any other
way (`object[...]`, `object.?x`, `size(object)`, `object == oldObject`) keeps that root whole,
so the projection never changes what an expression sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lks.kube.cel import source
from lks.kube.cel.library import FUNCTIONS

Tree = dict[str, "Tree | None"]  # field -> what of it is read; None: all of it
WHOLE = None


def _insert(tree: Tree, path: list[str]) -> None:
    node = tree
    for i, name in enumerate(path):
        if i == len(path) - 1:
            node[name] = WHOLE
            return
        child = node.get(name, {})
        if child is WHOLE:
            return
        node = node.setdefault(name, child)


def reads(expressions: Iterable[str], roots: Iterable[str]) -> dict[str, Tree | None]:
    """For each root an expression uses: the tree of the fields it reads (None: everything)."""
    roots = set(roots)
    out: dict[str, Tree | None] = {}
    for expression in expressions:
        try:
            toks = source.tokens(expression)
        except source.SyntaxProblem:
            return {r: WHOLE for r in roots}
        for i, tok in enumerate(toks):
            if tok.kind != "ident" or tok.text not in roots or (i and toks[i - 1].text in (".", ".?")):
                continue
            path, j = [], i + 1
            while (j + 1 < len(toks) and toks[j].text == "." and toks[j + 1].kind == "ident"
                   and not (j + 2 < len(toks) and toks[j + 2].text == "(")):
                path.append(toks[j + 1].text)
                j += 2
            if not path or out.get(tok.text, {}) is WHOLE:
                out[tok.text] = WHOLE
                continue
            _insert(out.setdefault(tok.text, {}), path)  # type: ignore[arg-type]
    return out


def project(value: Any, tree: Tree | None) -> Any:
    """`value` with only what `tree` reads (missing fields stay missing)."""
    if tree is WHOLE or type(value) is not dict:
        return value
    return {k: project(value[k], sub) for k, sub in tree.items() if k in value}


def functions(expressions: Iterable[str]) -> dict[str, Any]:
    """The library functions the expressions may call (a smaller CEL context to build)."""
    called: set[str] = set()
    for expression in expressions:
        try:
            toks = source.tokens(expression)
            toks = source.tokens(source.rewrite(expression, toks))  # what the interpreter runs
        except source.SyntaxProblem:
            return dict(FUNCTIONS)
        called |= {t.text for t, nxt in zip(toks, toks[1:], strict=False) if t.kind == "ident" and nxt.text == "("}
    return {name: fn for name, fn in FUNCTIONS.items() if name.rpartition(".")[2] in called}
