"""APIServices (apiregistration.k8s.io): the name must be `spec.version + "." + spec.group`, as
kube-aggregator's validation has it, on create and on update (a changed group or version must
come with the name it implies, so it never can). The spec's other rules are in
`lks.kube.typevalidation.apiregistration`.
"""

from __future__ import annotations

from lks.kube import validation
from lks.kube.errors import Cause
from lks.kube.strategies.base import Obj, Strategy


def _name_rule(obj: Obj) -> validation.NameRule:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    required = f"{spec.get('version') or ''}.{spec.get('group') or ''}"

    def rule(name: str) -> list[str]:
        if errs := validation.path_segment(name):
            return errs
        return [] if name == required else [f'must be `spec.version+"."+spec.group`: "{required}"']

    return rule


class APIServiceStrategy(Strategy):
    tracks_generation = False  # upstream's apiServiceStrategy keeps generation as it is

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_object_meta(obj["metadata"], namespaced=False, name_rule=_name_rule(obj))

    def validate_update(self, obj: Obj, old: Obj) -> list[Cause]:
        return validation.validate_object_meta(obj["metadata"], namespaced=False, name_rule=_name_rule(obj))
