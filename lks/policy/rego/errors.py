"""The one error of the Rego engine: a template that does not parse, compile or evaluate.

Its message reads as Gatekeeper's (OPA's) do, `<module>:<line>: <code>: <what>`, e.g.
`template:8: rego_parse_error: unexpected } token`, so that a ConstraintTemplate's
`status.byPod[].errors[].message` tells the user where to look.
"""


class RegoError(Exception):
    """A Rego module that cannot be used: parse, compile or evaluation error (the message says)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
