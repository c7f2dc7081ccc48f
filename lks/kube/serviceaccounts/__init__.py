"""Service-account tokens, as kube-apiserver issues and accepts them: the cluster's signing key
(`keys`), the issuer of bound and legacy JWTs (`issuer`), the token authenticator that turns
them back into users (`authenticator`) and the OIDC discovery documents (`discovery`).

TokenRequest (`lks.kube.subresources.tokenrequest`) and TokenReview
(`lks.kube.subresources.tokenreview`) are the API's faces of the issuer and the authenticator;
the node agents request tokens for their pods' projected volumes; `lks.controllers.tokens`
fills legacy token Secrets.
"""

from lks.kube.serviceaccounts import discovery
from lks.kube.serviceaccounts.authenticator import Authenticator, Invalid
from lks.kube.serviceaccounts.issuer import DEFAULT_ISSUER, LEGACY_ISSUER, Issuer
from lks.kube.serviceaccounts.keys import SigningKey

__all__ = ["DEFAULT_ISSUER", "discovery", "LEGACY_ISSUER", "Authenticator", "Invalid", "Issuer", "SigningKey"]
