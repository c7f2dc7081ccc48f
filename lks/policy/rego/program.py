"""A Gatekeeper template's Rego, compiled once with rego-cpp and evaluated per review.

`compile_template` translates the template and its libs (`v0.py`), checks what rego-cpp would
only find at evaluation time (an unknown function), and builds one precompiled bundle for the
query `data.<package>.violation` (a bundle evaluates 3-8x faster than a query compiled each
time: bench/rego_bench.py). `Program.violations` sets Gatekeeper's input (`review`, `parameters`, and the inventory,
which rides in the input because a bundle freezes `data`) and returns the violations as
Gatekeeper's `{msg, details}`. Converting that input costs more than most evaluations, so it is
built once per review and parameters in the caller's `shared` dict and set on every template's
interpreter that evaluates the same (`regoSetInput` copies it), without the parts of the object
no template module reads (`reads.py`); a constraint's parameters ride as data in a bundle of its
own (`input.parameters` read as `data["lks.parameters"]`) so that the input is the same for all;
a second constraint of the same template with the same parameters reuses the first one's answer,
and the audit's answer is kept per object revision until the object changes. Every bundle runs
on one interpreter per thread (`_Runner`), where a review's input is set once. Programs are cached by source: Gatekeeper's controller and audit
compile the same template many times over.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

import orjson
from regopy import Interpreter, LogLevel
from regopy import rego_shared as _c

from . import inputs, reads, v0
from .errors import RegoError

TEMPLATE_FILE = "template"
_CHILDREN = 256  # bundles kept per template, one per distinct parameters
_ANSWERS = 50_000  # answers kept per bundle across audits (by object revision)


def compile_template(rego: str, libs: Iterable[str] = (), *, version: str = "v0") -> Program:
    """Compile a template's Rego (and its `libs`), cached by source; RegoError if it cannot.

    `version` is the template's Rego version (`code[].source.version`: v0 unless "v1"); a module
    that imports rego.v1 is read as v1 whatever it says.
    """
    return _compile(rego, tuple(libs), version == "v1")


@functools.lru_cache(maxsize=512)
def _compile(rego: str, libs: tuple[str, ...], v1: bool) -> Program:
    template = v0.translate(rego, TEMPLATE_FILE, v1=v1)
    modules = [template]
    for i, lib in enumerate(libs):
        module = v0.translate(lib, f"libs[{i}]", v1=v1)
        if module.package != "lib" and not module.package.startswith("lib."):
            raise RegoError(f'{module.filename}:1: rego_compile_error: invalid package "{module.package}": '
                            'a lib\'s package must begin with "lib"')
        modules.append(module)
    if "violation" not in template.rules:
        raise RegoError(f"{TEMPLATE_FILE}:1: rego_compile_error: missing required rule: violation")
    clash = next((name for name, n in arities(modules).items() if len(n) > 1), None)
    if clash is not None:  # rego-cpp 1.5.2 crashes the process on it, even across packages
        raise RegoError(f"{TEMPLATE_FILE}:1: rego_compile_error: function {clash} is defined with different numbers "
                        "of arguments in two modules, which the engine does not support")
    return Program(template.package, modules)


def arities(modules: Iterable[v0.Module]) -> dict[str, set[int]]:
    """Every function name the modules define -> the numbers of arguments they define it with."""
    out: dict[str, set[int]] = {}
    for module in modules:
        for name, n in module.arities.items():
            out.setdefault(name, set()).update(n)
    return out


class Program:
    """A compiled template: `violations(review, parameters, inventory)`. Safe across threads."""

    def __init__(self, package: str, modules: list[v0.Module], parameters: bytes | None = None) -> None:
        self.package = package
        self.modules = modules
        self.uses_inventory = any(m.uses_inventory for m in modules)
        self.unread = reads.unread(m.source for m in modules)
        self.reads = reads.paths(m.source for m in modules)  # what of the review it can read
        self.reads_key = reads.key(self.reads, self.unread)
        # the parameters as data (one bundle per parameters, `_with`): the input is then the same
        # for every constraint; None if some module reaches `input` other than by a static path
        self.parameters = parameters
        moved = [reads.parameters_as_data(m.source) for m in modules] if parameters is None else None
        self._moved = None if moved is None or None in moved else moved
        self._reads_parameters = self._moved is not None and any(
            a != m.source for a, m in zip(self._moved, modules, strict=True))
        self._children: dict[bytes, Program] = {}
        self._answers: dict[tuple, list[dict]] = {}  # by object revision, see `_revision`
        self._lock = threading.Lock()
        self._rego = Interpreter()
        self._rego.log_level = LogLevel.NONE
        for module in modules:
            _check_calls(self._rego, module, modules)
            try:
                self._rego.add_module(module.filename, module.source)
            except _c.RegoError as err:
                raise RegoError(_message(str(err), modules, "rego_parse_error")) from None
        if parameters is not None:
            self._rego.add_data_json(f'{{"{reads.PARAMETERS}": {parameters.decode()}}}')
        try:
            self._bundle = self._rego.build(f"data.{package}.violation")
        except _c.RegoError as err:
            raise RegoError(_message(str(err), modules, "rego_compile_error")) from None
        if not self._bundle.ok():
            raise RegoError(f"{TEMPLATE_FILE}:1: rego_compile_error: the template does not compile")

    def violations(self, review: dict, parameters: dict | None, inventory: dict | None = None,
                   shared: dict | None = None) -> list[dict]:
        """Gatekeeper's `data.<package>.violation` for this review: [{"msg", "details"}, ...].

        `shared`: a dict the caller keeps for one review (and inventory) across constraints and
        templates, where the converted input is kept for the next evaluation with the same."""
        parameters = parameters if parameters is not None else {}
        program, parameters = self._with(parameters)
        revision = program._revision(review, parameters, shared)
        if revision is not None:
            with program._lock:
                kept = program._answers.get(revision)
            if kept is not None:
                return _copy(kept)
        value, key = program._input(review, parameters, inventory, shared)
        if key is not None and (program, key) in shared:  # a constraint with the same parameters
            return _copy(shared[(program, key)])
        found = program._evaluate(value)
        if key is not None:
            shared[(program, key)] = _copy(found)
        if revision is not None:
            with program._lock:
                if len(program._answers) >= _ANSWERS:
                    program._answers.pop(next(iter(program._answers)))
                program._answers[revision] = _copy(found)
        return found

    def _revision(self, review: dict, parameters: dict | None, shared: dict | None) -> tuple | None:
        """The key of this answer across audits: the object's (uid, resourceVersion) when the
        caller gives it (`shared["revision"]`), never for a template that reads the inventory
        (which changes without the object)."""
        revision = shared.get("revision") if shared else None
        if revision is None or None in revision or self.uses_inventory:
            return None
        kind = review.get("kind") or {}
        try:
            return (*revision, kind.get("group"), kind.get("version"), kind.get("kind"), review.get("operation"),
                    None if parameters is None else orjson.dumps(parameters))
        except TypeError:
            return None

    def _with(self, parameters: dict) -> tuple[Program, dict | None]:
        """The program to run and the parameters to put in the input (None: they are in its data,
        or it never reads them)."""
        if self._moved is None:
            return self, parameters
        if not self._reads_parameters:
            return self, None
        try:
            text = orjson.dumps(parameters)
        except TypeError:
            return self, parameters
        with self._lock:
            child = self._children.get(text)
        if child is None:
            modules = [dataclasses.replace(m, source=src) for m, src in zip(self.modules, self._moved, strict=True)]
            try:
                child = Program(self.package, modules, text)
            except (RegoError, _c.RegoError):  # as data they do not load: keep them in the input
                return self, parameters
            with self._lock:
                if len(self._children) >= _CHILDREN:
                    self._children.pop(next(iter(self._children)))
                self._children[text] = child
        return child, None

    def _evaluate(self, value: inputs.Input) -> list[dict]:
        ok, text = query(self._bundle, self._lock, value)
        if not ok or text.startswith("("):
            raise RegoError(_message(text, self.modules, "eval_error"))
        if text == "undefined":
            return []
        try:
            result = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise RegoError(f"{TEMPLATE_FILE}:1: eval_error: the engine's answer is not JSON: {text[:200]}") from None
        if isinstance(result, list):  # several results: rego-cpp lists them
            found = [v for r in result for v in r["expressions"][0]]
        else:
            found = result["expressions"][0]
        return [_violation(v) for v in found]

    def _input(self, review: dict, parameters: dict | None, inventory: dict | None,
               shared: dict | None) -> tuple[inputs.Input, tuple | None]:
        return review_input(self, review, parameters, inventory, shared)


def review_input(reader: Program | Any, review: dict, parameters: dict | None, inventory: dict | None,
                 shared: dict | None) -> tuple[inputs.Input, tuple | None]:
    """Gatekeeper's input for a review, as `reader` (a Program or a batch of them) can read it:
    only what its `reads` tree names, or (None: it can read all of it) without its `unread` parts
    (`reads.py`), with the inventory if it `uses_inventory`; kept in `shared` (and its key
    returned) for the next evaluation that needs the same one."""
    key = None
    if shared is not None:
        try:
            key = (reader.reads_key, reader.uses_inventory, None if parameters is None else orjson.dumps(parameters))
        except TypeError:
            key = None
        else:
            value = shared.get(key)
            if value is not None:
                return value, key
    tree = reader.reads
    document = {"review": reads.kept(review, tree) if tree is not None else reads.pruned(review, reader.unread)}
    if parameters is not None:
        document["parameters"] = parameters
    if reader.uses_inventory:
        document[v0.INVENTORY_FIELD] = inventory if inventory is not None else {}
    value = inputs.Input(document)
    if key is not None:
        shared[key] = value
    return value, key


def query(bundle, lock: threading.Lock, value: inputs.Input) -> tuple[bool, str]:
    """Run `bundle` (under its `lock`) on this thread's interpreter with the input `value`: (ok, output)."""
    runner = _runner()
    if runner.input is not value:  # regoSetInput copies the whole document: once per review
        _c.rego_set_input(runner.rego._impl, value._impl)
        runner.input = value
    with lock:
        output = _c.rego_bundle_query(runner.rego._impl, bundle._impl)
        try:
            return bool(_c.rego_output_ok(output)), _c.rego_output_string(output)
        finally:
            _c.rego_free_output(output)


class _Runner(threading.local):
    """This thread's interpreter that runs every bundle, with the input last set on it: a bundle
    carries its plan and data, the interpreter only the input (and the built-ins), so a review's
    input is set once for every template and constraint rather than copied into each."""

    def __init__(self) -> None:
        self.rego = Interpreter()
        self.rego.log_level = LogLevel.NONE
        self.input: inputs.Input | None = None  # kept alive, so that `is` cannot match a new one


_RUNNERS: _Runner | None = None


def _runner() -> _Runner:
    global _RUNNERS
    if _RUNNERS is None:
        _RUNNERS = _Runner()
    return _RUNNERS


def _copy(found: list[dict]) -> list[dict]:
    """A kept answer, copied so that a caller may change it (most answers are empty)."""
    return copy.deepcopy(found) if found else []


def _violation(value) -> dict:
    if not isinstance(value, dict):
        return {"msg": orjson.dumps(value).decode(), "details": {}}
    msg = value.get("msg", "")
    details = value.get("details", {})
    return {"msg": msg if isinstance(msg, str) else orjson.dumps(msg).decode(), "details": details}


def _check_calls(rego: Interpreter, module: v0.Module, modules: list[v0.Module]) -> None:
    """An unknown function is a compile error (rego-cpp would only fail once evaluated)."""
    local = set().union(*(m.functions for m in modules if m.package == module.package))
    for dotted, line in module.calls:
        first = dotted.split(".", 1)[0]
        if first == "data" or first in module.aliases or dotted in local:
            continue
        if not _c.rego_is_available_builtin(rego._impl, dotted):
            raise RegoError(f"{module.filename}:{line}: rego_type_error: undefined function {dotted}")


# rego-cpp's errors are an AST dump: `(error 8:template|120|3 (errormsg 16:this is unclosed) ...)`,
# strings length-prefixed, locations `file|byte offset|length`.
_ERROR = re.compile(r"\(error(?: (\d+):)?")
_MSG = re.compile(r"\(errormsg (\d+):")


def _message(dump: str, modules: list[v0.Module], code: str) -> str:
    if "(error" not in dump:
        return f"{TEMPLATE_FILE}:1: {code}: {dump.strip() or 'error'}"
    by_file = {m.filename: m for m in modules}
    messages: list[str] = []
    for m in _ERROR.finditer(dump):
        where = TEMPLATE_FILE
        if m.group(1):
            start = m.end()
            loc = dump[start : start + int(m.group(1))]
            rest = dump[start + int(m.group(1)) :].split(None, 1)[0]
            module = by_file.get(loc)
            where = loc
            if module is not None and rest.startswith("|"):
                offset = int(rest.split("|")[1])
                line = module.source.encode()[:offset].count(b"\n")
                where = f"{loc}:{module.lines[min(line, len(module.lines) - 1)]}"
        elif modules:
            where = f"{TEMPLATE_FILE}:1"
        msg = _MSG.search(dump, m.end())
        what = dump[msg.end() : msg.end() + int(msg.group(1))] if msg else "error"
        entry = f"{where}: {code}: {what}"
        if entry not in messages:
            messages.append(entry)
    return "; ".join(messages[:1]) if len(messages) == 1 else f"{len(messages)} errors occurred: " + "; ".join(messages)
