"""The image pull policy upstream defaults from an image reference.

`SetDefaults_Container` (and `SetDefaults_Volume` for image volumes) calls
`parsers.ParseImageName`, which parses with `distribution/reference.ParseNormalizedNamed` and
reports the tag `latest` when the reference names neither a tag nor a digest. The policy is
`Always` for the tag `latest` and `IfNotPresent` otherwise, including when the reference does
not parse (the error is ignored), so the grammar below is upstream's, digests checked included.
"""

from __future__ import annotations

import re
from typing import Any

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"\w[\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_ENCODED = re.compile(r"[a-f0-9]+")
# go-digest's registered algorithms and the length of their hex encoding
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_NAME_MAX = 255


def pull_policy(image: Any) -> str:
    return "Always" if tag(image) == "latest" else "IfNotPresent"


def tag(image: Any) -> str | None:
    """The tag `ParseImageName` reports ("" for a digest-only reference), None if it fails."""
    if not isinstance(image, str) or _IDENTIFIER.fullmatch(image):
        return None
    domain, remainder = _split_domain(image)
    if remainder.split(":", 1)[0].lower() != remainder.split(":", 1)[0]:
        return None  # "repository name must be lowercase"
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None or len(match[1]) > _NAME_MAX:
        return None
    name_tag, digest = match[2] or "", match[3] or ""
    if digest and not _valid_digest(digest):
        return None
    return name_tag or ("" if digest else "latest")


def _split_domain(image: str) -> tuple[str, str]:
    # the first path component is a registry only if it looks like one
    first, slash, rest = image.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = "docker.io", image
    else:
        domain, remainder = first, rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def _valid_digest(digest: str) -> bool:
    algorithm, _, encoded = digest.partition(":")
    return len(encoded) == _DIGEST_LENGTHS.get(algorithm) and _ENCODED.fullmatch(encoded) is not None
