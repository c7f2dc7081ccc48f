"""ARM's own reads around a login: the subscriptions and the tenants a caller sees (`GET
/subscriptions`, `/subscriptions/{id}`, `/tenants`). `az login` lists them to fill its account
list, and the Azure SDK's SubscriptionClient reads them. lks serves one subscription
(`config.json`'s `subscription_id`) in one tenant (`tenant_id`, the token issuer's).

These are ARM's front-door routes, not a resource provider's: a wrong `api-version` is ARM's
`InvalidApiVersionParameter`, not `NoRegisteredProviderFound` (`lks.arm.app`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from lks.arm.app import Call, Route, json_response, route
from lks.arm.errors import ARMError

# the api-versions of ARM's own endpoints, in the order its error lists them
API_VERSIONS = (
    "2025-04-01", "2025-03-01", "2025-01-01", "2024-11-01", "2024-08-01", "2024-07-01", "2024-06-01-preview",
    "2024-03-01", "2023-07-01", "2023-07-01-preview", "2023-03-01-preview", "2022-12-01", "2022-11-01-preview",
    "2022-09-01", "2022-06-01", "2022-05-01", "2022-03-01-preview", "2022-01-01", "2021-04-01", "2021-01-01",
    "2020-10-01", "2020-09-01", "2020-08-01", "2020-07-01", "2020-06-01", "2020-05-01", "2020-01-01", "2019-11-01",
    "2019-10-01", "2019-09-01", "2019-08-01", "2019-07-01", "2019-06-01", "2019-05-10", "2019-05-01", "2019-03-01",
    "2018-11-01", "2018-09-01", "2018-08-01", "2018-07-01", "2018-06-01", "2018-05-01", "2018-02-01", "2018-01-01",
    "2017-12-01", "2017-08-01", "2017-06-01", "2017-05-10", "2017-05-01", "2017-03-01", "2016-09-01", "2016-07-01",
    "2016-06-01", "2016-02-01", "2015-11-01", "2015-01-01", "2014-04-01-preview", "2014-04-01", "2014-01-01",
    "2013-03-01", "2014-02-26", "2014-04",
)
DISPLAY_NAME = "lks"
TENANT_DOMAIN = "lks.onmicrosoft.com"


def routes(*, subscription_id: str, tenant_id: str) -> list[Route]:
    reads = Reads(subscription_id=subscription_id, tenant_id=tenant_id)

    def r(path: str, handler: Any, type_name: str) -> Route:
        return route(path, {"GET": handler}, api_versions=None, type_name=type_name, namespace="Microsoft.Resources")

    return [r("/subscriptions", reads.list_subscriptions, "subscriptions"),
            r("/subscriptions/{subscription}", reads.get_subscription, "subscriptions"),
            r("/tenants", reads.list_tenants, "tenants")]


def check_api_version(version: str) -> None:
    """ARM's answer to an api-version its own endpoints do not know."""
    if version not in API_VERSIONS:
        raise ARMError("InvalidApiVersionParameter", f"The api-version '{version}' is invalid. The supported "
                       f"versions are '{','.join(API_VERSIONS)}'.", 400)


class Reads:
    def __init__(self, *, subscription_id: str, tenant_id: str):
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id

    def subscription(self) -> dict[str, Any]:
        sub = self.subscription_id
        return {
            "id": f"/subscriptions/{sub}", "authorizationSource": "RoleBased", "managedByTenants": [],
            "subscriptionId": sub, "tenantId": self.tenant_id, "displayName": DISPLAY_NAME, "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
        }

    def tenant(self) -> dict[str, Any]:
        return {"id": f"/tenants/{self.tenant_id}", "tenantId": self.tenant_id, "countryCode": "US",
                "displayName": DISPLAY_NAME, "domains": [TENANT_DOMAIN], "tenantCategory": "Home",
                "defaultDomain": TENANT_DOMAIN, "tenantType": "AAD"}

    async def list_subscriptions(self, call: Call) -> web.Response:
        """The subscription, to a caller holding a role anywhere in it, as ARM lists them (a
        principal with none gets an empty list: az's "No subscriptions found")."""
        check_api_version(call.api_version)
        seen = call.access is None or call.access.holds_within(f"/subscriptions/{self.subscription_id}")
        value = [self.subscription()] if seen else []
        return json_response({"value": value, "count": {"type": "Total", "value": len(value)}})

    async def get_subscription(self, call: Call) -> web.Response:
        check_api_version(call.api_version)  # another subscription's id is ARM's 404 already (`lks.arm.app`)
        return json_response(self.subscription())

    async def list_tenants(self, call: Call) -> web.Response:
        check_api_version(call.api_version)
        return json_response({"value": [self.tenant()]})
