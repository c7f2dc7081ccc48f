"""ARM errors: every failure of the management API is an `ARMError` with AKS's error code,
answered as `{"error": {"code", "message", "details"}}` (details only when there are some).
Handlers raise; `lks.arm.app` converts once.
"""

from __future__ import annotations

from typing import Any


class ARMError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, details: list[dict[str, Any]] | None = None,
                 target: str | None = None, headers: dict[str, str] | None = None, subcode: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or []
        self.target = target
        self.headers = headers or {}  # with the answer, e.g. a 405's Allow
        self.subcode = subcode  # AKS's finer reason under a generic code, e.g. UpgradeBlockedOnDeprecatedAPIUsage

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        if self.subcode:
            error["subcode"] = self.subcode
        return {"error": error}


def not_found(type_: str, name: str, group: str) -> ARMError:
    """ARM's wording for a missing resource."""
    return ARMError(
        "ResourceNotFound",
        f"The Resource '{type_}/{name}' under resource group '{group}' was not found. For more details please "
        "go to https://aka.ms/ARMResourceNotFoundFix",
        404,
    )


def group_not_found(group: str) -> ARMError:
    return ARMError("ResourceGroupNotFound", f"Resource group '{group}' could not be found.", 404)


def invalid_parameter(message: str, target: str | None = None) -> ARMError:
    return ARMError("InvalidParameter", message, 400, target=target)
