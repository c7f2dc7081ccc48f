"""Rego for Gatekeeper's templates: rego-cpp (regopy) behind one call.

`compile_template(rego, libs)` -> `Program`, whose `violations(review, parameters, inventory)`
answers Gatekeeper's `data.<package>.violation`. v0 templates are translated to v1 first
(`v0.py` and `hoist.py` over `lexer.py`), since rego-cpp reads only v1; `program.py` compiles
and evaluates, `inputs.py` hands it Gatekeeper's input (cut down to what the templates read:
`reads.py`), `batch.py` answers every constraint of a review in one query.
`lks/policy/gatekeeper/` is the caller.
"""

from .errors import RegoError
from .program import Program, compile_template

__all__ = ["Program", "RegoError", "compile_template"]
