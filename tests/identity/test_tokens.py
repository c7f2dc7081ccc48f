"""Access tokens: the claims Entra's app tokens carry, and verification in ARM's order with its
five minutes of skew."""

from __future__ import annotations

import jwt
import pytest

from lks.clock import ManualClock
from lks.identity import tokens
from lks.kube.serviceaccounts import SigningKey

KEY = SigningKey.generate()
ISS = "https://127.0.0.1:8443/t1/v2.0"
AUDS = ("https://management.lks/", "https://management.lks")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def signer(clock: ManualClock) -> tokens.Tokens:
    return tokens.Tokens(key=KEY, tenant_id="t1", clock=clock)


def _issue(signer: tokens.Tokens, audience: str = AUDS[0]) -> str:
    return signer.issue(issuer=ISS, audience=audience, object_id="oid-1", app_id="app-1", credential_type="1")[0]


def test_claims_are_an_app_token_of_entra(signer: tokens.Tokens) -> None:
    token, lifetime = signer.issue(issuer=ISS, audience=AUDS[0], object_id="oid-1", app_id="app-1",
                                   credential_type="1")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, KEY.public, algorithms=["RS256"], audience=AUDS[0],
                        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    assert header["alg"] == "RS256" and header["kid"] == KEY.kid
    assert lifetime == 3599
    assert claims["exp"] - claims["iat"] == 3599 + 300 and claims["nbf"] == claims["iat"] == 1_800_000_000 - 300
    assert {k: claims[k] for k in ("aud", "iss", "oid", "sub", "tid", "appid", "appidacr", "idtyp", "ver")} == {
        "aud": AUDS[0], "iss": ISS, "oid": "oid-1", "sub": "oid-1", "tid": "t1", "appid": "app-1", "appidacr": "1",
        "idtyp": "app", "ver": "1.0"}


def test_verify(signer: tokens.Tokens) -> None:
    token = _issue(signer)
    assert signer.verify(token, issuer=ISS, audiences=AUDS)["oid"] == "oid-1"
    assert signer.verify(token, issuer=ISS, audiences=AUDS)["oid"] == "oid-1"  # remembered


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), id="signature"),
    pytest.param(lambda t: t.split(".")[0] + "." + t.split(".")[1][:-2] + "xx." + t.split(".")[2], id="payload"),
    pytest.param(lambda t: "not-a-jwt", id="garbage"),
    pytest.param(lambda t: jwt.encode(jwt.decode(t, options={"verify_signature": False}),
                                      SigningKey.generate().private, algorithm="RS256"), id="another-key"),
    pytest.param(lambda t: jwt.encode(jwt.decode(t, options={"verify_signature": False}), "s" * 32,
                                      algorithm="HS256"), id="hs256"),
])
def test_tampered_tokens_are_invalid(signer: tokens.Tokens, mangle) -> None:
    with pytest.raises(tokens.Invalid):
        signer.verify(mangle(_issue(signer)), issuer=ISS, audiences=AUDS)


def test_another_issuer_is_invalid(signer: tokens.Tokens) -> None:
    with pytest.raises(tokens.Invalid):
        signer.verify(_issue(signer), issuer="https://127.0.0.1:9999/t1/v2.0", audiences=AUDS)


def test_wrong_audience(signer: tokens.Tokens) -> None:
    with pytest.raises(tokens.WrongAudience) as err:
        signer.verify(_issue(signer, "https://127.0.0.1:8443/graph/"), issuer=ISS, audiences=AUDS)
    assert err.value.audience == "https://127.0.0.1:8443/graph/"


def test_wrong_tenant(signer: tokens.Tokens, clock: ManualClock) -> None:
    other = tokens.Tokens(key=KEY, tenant_id="t2", clock=clock)
    with pytest.raises(tokens.WrongTenant) as err:
        signer.verify(_issue(other), issuer=ISS, audiences=AUDS)
    assert err.value.tenant == "t2"


async def test_expiry_with_five_minutes_of_skew(signer: tokens.Tokens, clock: ManualClock) -> None:
    token = _issue(signer)
    await clock.advance(3599 + 299)
    signer.verify(token, issuer=ISS, audiences=AUDS)
    await clock.advance(2)
    with pytest.raises(tokens.Expired) as err:
        signer.verify(token, issuer=ISS, audiences=AUDS)
    assert err.value.expiry == 1_800_000_000 + 3599


def test_not_yet_valid(clock: ManualClock) -> None:
    early = tokens.Tokens(key=KEY, tenant_id="t1", clock=ManualClock(clock.now() + 3600))
    token = _issue(early)
    with pytest.raises(tokens.NotYetValid):
        tokens.Tokens(key=KEY, tenant_id="t1", clock=clock).verify(token, issuer=ISS, audiences=AUDS)


def test_arm_time() -> None:
    assert tokens.arm_time(1_800_000_000) == "1/15/2027 8:00:00 AM"
    assert tokens.arm_time(1_800_000_000 + 5 * 3600 + 65) == "1/15/2027 1:01:05 PM"
    assert tokens.arm_time(1_800_000_000 - 8 * 3600) == "1/15/2027 12:00:00 AM"
