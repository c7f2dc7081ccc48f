"""Every Rego constraint a review meets, answered in one rego-cpp query.

rego-cpp charges a fixed ~60-70 µs per query besides the evaluation (bench/rego_bench.py), and
each constraint's call costs Python work around it, so the constraints that match one review are
answered together. A `Batch` is one bundle for a list of slots, a slot being a template's program
with one constraint's parameters (`Program._with`'s child): each slot brings a private copy of
its modules with every package and every `data` reference moved under a prefix of its own
(`lks_s<k>.`), so that two templates with the same package or libs of the same name never meet,
and its parameters as data under that prefix. The query is the array of every slot's
`violation`, and each answer is exactly its slot's. A batch that does not build is never tried
again; a review it cannot answer (an evaluation error in some template) is answered slot by slot
by `Program.violations`, whose errors are each constraint's own. A constraint whose parameters
ride in the input (a template reading `input` other than by static paths) is answered on its own.

Slots that define one function name with different numbers of arguments go to batches of their
own (rego-cpp 1.5.2 crashes building such a bundle, whatever the packages). Batches are kept by
their slots and built the second time a set of slots is seen (a set met once is not worth a
compile); the audit's answers are kept per object revision, as a Program keeps its own, and
handed out as they are: callers read answers, never change them.
`lks/policy/gatekeeper/evaluation.py` is the caller.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any

import orjson
from regopy import Interpreter, LogLevel
from regopy import rego_shared as _c

from . import program as _program
from . import reads
from .errors import RegoError
from .lexer import IDENT, NL, tokenize
from .program import Program

_BATCHES = 256  # batches kept (by their slots)
_SEEN = 4096  # sets of slots remembered as seen once
_ANSWERS = 50_000  # answers kept per batch across audits (by object revision)
PREFIX = "lks_s"

_lock = threading.Lock()
_batches: dict[tuple[Program, ...], list[tuple[Batch | None, list[int]]]] = {}
_seen: dict[tuple[Program, ...], None] = {}


def violations(entries: Sequence[tuple[Program, dict | None]], review: dict, inventory: dict | None = None,
               shared: dict | None = None) -> list[list[dict] | Exception]:
    """`Program.violations(review, parameters, inventory, shared)` of every (program, parameters)
    in `entries`, in one query where it can: each entry's violations, or the error it raised.
    Entries answered by one slot (the same template and parameters) share one list: read it."""
    out: list[list[dict] | Exception | None] = [None] * len(entries)
    slots, order = _slots(entries)
    for batch, members in _batches_of(slots) if len(slots) > 1 else ():
        answers = batch.answers(review, inventory, shared) if batch is not None else None
        if answers is None:
            continue
        for answer, k in zip(answers, members, strict=True):
            for i in order[k]:
                out[i] = answer
    for i, (program, parameters) in enumerate(entries):
        if out[i] is None:
            try:
                out[i] = program.violations(review, parameters, inventory, shared)
            except Exception as err:  # the constraint's own error, for the caller to report
                out[i] = err
    return out  # type: ignore[return-value]


_SLOTS = 256  # lists of entries remembered with their slots
_slotted: dict[tuple[int, ...], tuple[list, tuple[Program, ...], list[list[int]]]] = {}


def _slots(entries: Sequence[tuple[Program, dict | None]]) -> tuple[tuple[Program, ...], list[list[int]]]:
    """The slots of `entries` (those whose parameters can be data) and the entries each answers;
    remembered by the entries' identities, which the audit repeats for every object."""
    key = tuple(map(id, itertools.chain.from_iterable(entries)))
    with _lock:
        known = _slotted.get(key)
    if known is not None and known[0] == entries:  # the same objects (kept alive), or equal ones
        return known[1], known[2]
    slots: dict[Program, list[int]] = {}  # slot -> the entries it answers
    for i, (program, parameters) in enumerate(entries):
        slot, in_input = program._with(parameters if parameters is not None else {})
        if in_input is None:
            slots.setdefault(slot, []).append(i)
    found = (tuple(slots), list(slots.values()))
    with _lock:
        if len(_slotted) >= _SLOTS:
            _slotted.pop(next(iter(_slotted)))
        _slotted[key] = (list(entries), *found)  # keeps them alive: their ids stay theirs
    return found


def _batches_of(slots: tuple[Program, ...]) -> list[tuple[Batch | None, list[int]]]:
    """The batches that answer `slots` (None: one that does not build), each with the indexes of
    its slots; none the first time these slots are met."""
    with _lock:
        if slots in _batches:
            return _batches[slots]
        if slots not in _seen:  # the first time: answered slot by slot
            if len(_seen) >= _SEEN:
                _seen.pop(next(iter(_seen)))
            _seen[slots] = None
            return []
    found: list[tuple[Batch | None, list[int]]] = []
    for members in _groups(slots):
        try:
            batch: Batch | None = Batch([slots[k] for k in members]) if len(members) > 1 else None
        except (RegoError, _c.RegoError):
            batch = None
        found.append((batch, members))
    with _lock:
        _seen.pop(slots, None)
        if len(_batches) >= _BATCHES:
            _batches.pop(next(iter(_batches)))
        _batches[slots] = found
    return found


def _groups(slots: Sequence[Program]) -> list[list[int]]:
    """`slots` (indexes) in groups where no function name is defined with two numbers of arguments:
    rego-cpp 1.5.2 crashes building such a bundle, though the functions are in other packages."""
    groups: list[tuple[list[int], dict[str, set[int]]]] = []
    for k, slot in enumerate(slots):
        mine = _program.arities(slot.modules)
        for members, defined in groups:
            if all(defined.get(name, n) == n for name, n in mine.items()):
                members.append(k)
                for name, n in mine.items():
                    defined.setdefault(name, n)
                break
        else:
            groups.append(([k], dict(mine)))
    return [members for members, _ in groups]


class Batch:
    """One bundle answering `slots` (programs whose parameters are in their data) in one query."""

    def __init__(self, slots: Sequence[Program]) -> None:
        self.slots = tuple(slots)
        self.unread = frozenset.intersection(*(s.unread for s in self.slots))
        self.reads = reads.union(s.reads for s in self.slots)
        self.reads_key = reads.key(self.reads, self.unread)
        self.uses_inventory = any(s.uses_inventory for s in self.slots)
        self._lock = threading.Lock()
        self._answers: dict[tuple, list[list[dict]]] = {}
        rego = Interpreter()
        rego.log_level = LogLevel.NONE
        data: list[bytes] = []
        refs: list[str] = []
        for k, slot in enumerate(self.slots):
            prefix = f"{PREFIX}{k}"
            for module in slot.modules:
                rego.add_module(f"{prefix}/{module.filename}", prefixed(module.source, prefix))
            if slot.parameters is not None:
                data.append(b'"%s": {"%s": %s}' % (prefix.encode(), reads.PARAMETERS.encode(),
                                                   slot.parameters))
            refs.append(f"data.{prefix}.{slot.package}.violation")
        if data:
            rego.add_data_json((b"{" + b", ".join(data) + b"}").decode())
        self._bundle = rego.build("[" + ", ".join(refs) + "]")
        if not self._bundle.ok():
            raise RegoError("the batch does not compile")
        self._rego = rego

    def answers(self, review: dict, inventory: dict | None, shared: dict | None) -> list[list[dict]] | None:
        """Each slot's violations of `review`, or None if the query fails (answer slot by slot)."""
        revision = self._revision(review, shared)
        if revision is not None:
            with self._lock:
                kept = self._answers.get(revision)
            if kept is not None:
                return kept  # shared, as the answers of one slot are (read them)
        value, _ = _program.review_input(self, review, None, inventory, shared)
        ok, text = _program.query(self._bundle, self._lock, value)
        if not ok or not text.startswith("{"):
            return None
        try:
            result = orjson.loads(text)
            found = result["expressions"][0]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return None
        if not isinstance(found, list) or len(found) != len(self.slots):
            return None
        answers = [[_program._violation(v) for v in vs] for vs in found]
        if revision is not None:
            with self._lock:
                if len(self._answers) >= _ANSWERS:
                    self._answers.pop(next(iter(self._answers)))
                self._answers[revision] = answers
        return answers

    def _revision(self, review: dict, shared: dict | None) -> tuple | None:
        """As `Program._revision`: the object's (uid, resourceVersion) and the review's kind and
        operation; never when a slot reads the inventory."""
        revision = shared.get("revision") if shared else None
        if revision is None or None in revision or self.uses_inventory:
            return None
        kind = review.get("kind") or {}
        return (*revision, kind.get("group"), kind.get("version"), kind.get("kind"), review.get("operation"))


def prefixed(source: str, prefix: str) -> str:
    """`source` (translated, v1) with its package and every reference to `data` under `prefix`
    (`data.lib.x` -> `data.<prefix>.lib.x`); every other byte as it was."""
    toks = tokenize(source, "template")
    prev: Any = None
    for i, t in enumerate(toks):
        if t.trivia or t.kind == NL:
            continue
        if t.kind == IDENT and not (prev is not None and prev.text == "."):
            if t.text == "package":
                j = i + 1
                while toks[j].trivia:
                    j += 1
                toks[j].text = f"{prefix}.{toks[j].text}"
            elif t.text == "data":
                t.text = f"data.{prefix}"
        prev = t
    return "".join(t.text for t in toks)
