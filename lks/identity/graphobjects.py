"""A principal of `lks.identity.principals` as Microsoft Graph v1.0 shows it: the `application`,
its `servicePrincipal`, their `passwordCredential`s and `federatedIdentityCredential`s, the
tenant's `organization`, with every property Graph answers (null or empty where lks has no such
thing: lks principals have no certificates, identifier URIs, app roles or owners), so clients
that read any of them (az, the Graph SDKs) find them. `lks.identity.graph` serves them.
"""

from __future__ import annotations

import uuid
from typing import Any

from lks.identity import groups, principals

TENANT_DOMAIN = "lks.onmicrosoft.com"  # the tenant's initial domain (ARM's /tenants names it too)
TENANT_NAME = "lks"
SIGN_IN_AUDIENCE = "AzureADMyOrg"  # what `az ad app create` gets in a work tenant
_INFO = {"logoUrl": None, "marketingUrl": None, "privacyStatementUrl": None, "supportUrl": None,
         "termsOfServiceUrl": None}
_VERIFIED_PUBLISHER = {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}

# what each collection's $filter may name (lower case), as Graph's directory indexes them
APPLICATION_FILTERS = frozenset({"id", "appid", "displayname", "identifieruris", "signinaudience", "tags",
                                 "createddatetime", "publisherdomain"})
SERVICE_PRINCIPAL_FILTERS = frozenset({"id", "appid", "displayname", "serviceprincipalnames", "serviceprincipaltype",
                                       "accountenabled", "apporganizationid", "appownerorganizationid", "tags",
                                       "alternativenames"})
FEDERATED_FILTERS = frozenset({"name", "subject", "issuer"})
USER_FILTERS = frozenset({"id", "userprincipalname", "displayname", "mail", "mailnickname"})
GROUP_FILTERS = frozenset({"id", "displayname", "mailnickname", "securityenabled", "mailenabled", "description",
                           "createddatetime", "grouptypes", "mail", "proxyaddresses"})
ODATA_TYPES = {"servicePrincipal": "#microsoft.graph.servicePrincipal", "group": "#microsoft.graph.group"}


def password(cred: principals.PasswordCredential, secret: str | None = None) -> dict[str, Any]:
    """A `passwordCredential`; `secretText` only in the answer of addPassword."""
    return {"customKeyIdentifier": None, "displayName": cred.display_name, "endDateTime": cred.end,
            "hint": cred.hint, "keyId": cred.key_id, "secretText": secret, "startDateTime": cred.start}


def federated(cred: principals.FederatedCredential) -> dict[str, Any]:
    return {"id": cred.id, "name": cred.name, "issuer": cred.issuer, "subject": cred.subject,
            "description": cred.description, "audiences": list(cred.audiences)}


def application(sp: principals.ServicePrincipal) -> dict[str, Any]:
    return {
        "id": sp.application_object_id, "deletedDateTime": None, "appId": sp.app_id, "applicationTemplateId": None,
        "disabledByMicrosoftStatus": None, "createdDateTime": sp.created, "displayName": sp.display_name,
        "description": None, "groupMembershipClaims": None, "identifierUris": [], "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": None, "nativeAuthenticationApisEnabled": None, "notes": None,
        "publisherDomain": TENANT_DOMAIN, "serviceManagementReference": None, "signInAudience": SIGN_IN_AUDIENCE,
        "tags": [], "tokenEncryptionKeyId": None, "uniqueName": None, "samlMetadataUrl": None,
        "defaultRedirectUri": None, "certification": None, "optionalClaims": None,
        "servicePrincipalLockConfiguration": None, "requestSignatureVerification": None, "addIns": [],
        "api": {"acceptMappedClaims": None, "knownClientApplications": [], "requestedAccessTokenVersion": None,
                "oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        "appRoles": [], "info": dict(_INFO), "keyCredentials": [],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [password(p) for p in sp.passwords], "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [], "verifiedPublisher": dict(_VERIFIED_PUBLISHER),
        "web": {"homePageUrl": None, "logoutUrl": None, "redirectUris": [],
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
                "redirectUriSettings": []},
        "spa": {"redirectUris": []},
    }


def service_principal(sp: principals.ServicePrincipal, tenant_id: str) -> dict[str, Any]:
    return {
        "id": sp.object_id, "deletedDateTime": None, "accountEnabled": True, "alternativeNames": [],
        "appDisplayName": sp.display_name, "appDescription": None, "appId": sp.app_id,
        "applicationTemplateId": None, "appOwnerOrganizationId": tenant_id, "appRoleAssignmentRequired": False,
        "createdDateTime": sp.created, "description": None, "disabledByMicrosoftStatus": None,
        "displayName": sp.display_name, "homepage": None, "loginUrl": None, "logoutUrl": None, "notes": None,
        "notificationEmailAddresses": [], "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None, "replyUrls": [], "servicePrincipalNames": [sp.app_id],
        "servicePrincipalType": "Application", "signInAudience": SIGN_IN_AUDIENCE, "tags": [],
        "tokenEncryptionKeyId": None, "samlSingleSignOnSettings": None, "addIns": [], "appRoles": [],
        "info": dict(_INFO), "keyCredentials": [], "oauth2PermissionScopes": [],
        "passwordCredentials": [password(p) for p in sp.passwords], "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": dict(_VERIFIED_PUBLISHER),
    }


def organization(tenant_id: str, created: str | None) -> dict[str, Any]:
    return {
        "id": tenant_id, "deletedDateTime": None, "businessPhones": [], "city": None, "country": None,
        "countryLetterCode": None, "createdDateTime": created, "displayName": TENANT_NAME,
        "marketingNotificationEmails": [], "onPremisesLastSyncDateTime": None, "onPremisesSyncEnabled": None,
        "postalCode": None, "preferredLanguage": "en", "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [], "state": None, "street": None, "technicalNotificationMails": [],
        "tenantType": "AAD", "directorySizeQuota": None, "assignedPlans": [], "privacyProfile": None,
        "provisionedPlans": [],
        "verifiedDomains": [{"capabilities": "None", "isDefault": True, "isInitial": True, "name": TENANT_DOMAIN,
                             "type": "Managed"}],
    }


def group(g: groups.Group) -> dict[str, Any]:
    """A security group as Graph v1.0 shows it."""
    return {
        "id": g.object_id, "deletedDateTime": None, "classification": None, "createdDateTime": g.created,
        "creationOptions": [], "description": g.description, "displayName": g.display_name,
        "expirationDateTime": None, "groupTypes": [], "isAssignableToRole": None, "mail": None,
        "mailEnabled": g.mail_enabled, "mailNickname": g.mail_nickname, "membershipRule": None,
        "membershipRuleProcessingState": None, "onPremisesDomainName": None, "onPremisesLastSyncDateTime": None,
        "onPremisesNetBiosName": None, "onPremisesSamAccountName": None, "onPremisesSecurityIdentifier": None,
        "onPremisesSyncEnabled": None, "preferredDataLocation": None, "preferredLanguage": None,
        "proxyAddresses": [], "renewedDateTime": g.created, "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [], "securityEnabled": g.security_enabled,
        "securityIdentifier": _sid(g.object_id), "theme": None, "uniqueName": None, "visibility": None,
        "onPremisesProvisioningErrors": [], "serviceProvisioningErrors": [],
    }


def _sid(object_id: str) -> str:
    """The group's Windows security identifier, derived from its object id as Entra derives it
    (`S-1-12-1-` and the GUID's bytes as four little-endian unsigned integers)."""
    raw = uuid.UUID(object_id).bytes_le
    return "S-1-12-1-" + "-".join(str(int.from_bytes(raw[i:i + 4], "little")) for i in range(0, 16, 4))
