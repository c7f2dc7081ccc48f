"""The code of a ConstraintTemplate, compiled once per template generation: a `Program` whose
`violations(review, parameters, inventory)` gives Gatekeeper's results (`{"msg", "details"}`).

Two engines, as Gatekeeper's drivers: `K8sNativeValidation` (CEL, with lks's own CEL as
ValidatingAdmissionPolicy uses it: `variables.anyObject`, `variables.params`, the template's
variables, `validations` with `message` / `messageExpression`, optional `matchConditions`) and
`Rego` (the `rego` field or a `code` entry; `lks.policy.rego`). When a template carries both,
CEL is used, as Gatekeeper prefers its native driver. A template that does not compile raises
`IngestError` with the driver's words, for the template controller's `ingest_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from lks.kube import cel

Obj = dict[str, Any]

TARGET = "admission.k8s.gatekeeper.sh"
CEL, REGO = "K8sNativeValidation", "Rego"
_CEL_NAMES = ("object", "oldObject", "request", "params", "namespaceObject", "variables")


class IngestError(Exception):
    """The template's code could not be compiled; str(err) is the driver's message."""


class Program(Protocol):
    def violations(self, review: Obj, parameters: Any, inventory: Obj) -> list[Obj]: ...


class CELProgram:
    def __init__(self, source: Obj):
        if not isinstance(source, dict):
            raise IngestError("K8sNativeValidation source must be an object")
        self.variables: list[tuple[str, cel.Program]] = []
        for v in source.get("variables") or []:
            self.variables.append((v.get("name") or "", _compile(v.get("expression") or "", "variables")))
        self.conditions = [_compile(c.get("expression") or "", "matchConditions")
                           for c in source.get("matchConditions") or []]
        self.validations: list[tuple[cel.Program, str, cel.Program | None]] = []
        for v in source.get("validations") or []:
            expr = v.get("expression") or ""
            message_expr = v.get("messageExpression")
            self.validations.append((_compile(expr, "validations"),
                                     v.get("message") or f"failed expression: {expr.strip()}",
                                     _compile(message_expr, "messageExpression") if message_expr else None))
        if not self.validations:
            raise IngestError("K8sNativeValidation source must have at least one validation")

    def violations(self, review: Obj, parameters: Any, inventory: Obj) -> list[Obj]:
        obj, old = review.get("object"), review.get("oldObject")
        request = {k: v for k, v in review.items() if k not in ("object", "oldObject")}
        any_obj = old if review.get("operation") == "DELETE" and obj is None else obj
        variables: dict[str, Any] = {"anyObject": any_obj, "params": parameters}
        values = {"object": obj, "oldObject": old, "request": request, "params": parameters,
                  "namespaceObject": review.get("_namespace"), "variables": variables}
        for name, program in self.variables:
            try:
                variables[name] = program.run(values)
            except cel.EvalError:
                continue  # a validation that uses it fails with its own error
        for program in self.conditions:
            try:
                if program.run(values) is False:
                    return []
            except cel.EvalError:
                continue
        out: list[Obj] = []
        for program, message, message_expr in self.validations:
            try:
                ok = program.run(values)
            except cel.EvalError as err:
                out.append({"msg": f"expression {program.expression.strip()!r} resulted in error: {err}",
                            "details": {}})
                continue
            if ok is True:
                continue
            text = message
            if message_expr is not None:
                try:
                    shown = message_expr.run(values)
                    if isinstance(shown, str) and shown.strip():
                        text = shown
                except cel.EvalError:
                    pass
            out.append({"msg": text, "details": {}})
        return out


def _compile(expression: str, where: str) -> cel.Program:
    try:
        return cel.compile(expression, _CEL_NAMES)
    except cel.CompileError as err:
        raise IngestError(f"{where}: compilation failed: {err}") from None


class RegoProgram:
    def __init__(self, rego: str, libs: list[str]):
        try:
            from lks.policy import rego as engine  # written alongside; absent, templates say so
        except ImportError:
            raise IngestError("the Rego engine is not available") from None
        compile_template = getattr(engine, "compile_template", None)
        if compile_template is None:
            raise IngestError("the Rego engine is not available")
        try:
            self.program = compile_template(rego, list(libs))
        except engine.RegoError as err:
            raise IngestError(str(err)) from None

    def violations(self, review: Obj, parameters: Any, inventory: Obj) -> list[Obj]:
        review = {k: v for k, v in review.items() if k != "_namespace"}
        return self.program.violations(review, parameters if parameters is not None else {}, inventory)


def compile_template(template: Obj) -> Program:
    """The program of `template`'s admission target; IngestError if it has none or it does not compile."""
    targets = (template.get("spec") or {}).get("targets") or []
    if len(targets) != 1:
        raise IngestError(f"expected exactly 1 item in targets, got {len(targets)}")
    target = targets[0]
    if target.get("target") != TARGET:
        raise IngestError(f'target "{target.get("target")}" not recognized')
    code: Mapping[str, Any] = {c.get("engine"): c.get("source") for c in target.get("code") or []}
    if CEL in code:
        return CELProgram(code[CEL])
    rego, libs = target.get("rego"), target.get("libs") or []
    if REGO in code:
        source = code[REGO] or {}
        if rego:
            raise IngestError('"Rego" may only be specified in one place: the rego field or code')
        rego, libs = source.get("rego"), source.get("libs") or libs
    if not rego:
        raise IngestError("no language driver is installed for this template: it has neither Rego nor "
                          "K8sNativeValidation code")
    return RegoProgram(rego, libs)
