"""The principal store: service principals, secrets kept only as hashes, federated credentials,
all surviving a restart of the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from lks import store
from lks.clock import ManualClock
from lks.identity import principals
from lks.identity.principals import Principals


@pytest.fixture
async def backend(tmp_path: Path):
    b = store.open_store(f"sqlite://{tmp_path / 'lks.db'}")
    await b.start()
    yield b
    await b.close()


async def test_create_get_list_delete(backend):
    ps = Principals(backend)
    sp = await ps.create("ci")
    assert len({sp.app_id, sp.object_id, sp.application_object_id}) == 3
    assert await ps.get(sp.app_id) == sp
    assert await ps.get(sp.object_id.upper()) == sp  # ids are case-insensitive, as Graph's
    assert await ps.get(sp.application_object_id) == sp
    assert [p.app_id for p in await ps.list()] == [sp.app_id]
    assert await ps.delete(sp.object_id) == sp
    assert await ps.get(sp.app_id) is None
    with pytest.raises(principals.PrincipalNotFound):
        await ps.delete(sp.app_id)


async def test_secret_is_stored_only_as_a_salted_hash(backend):
    ps = Principals(backend)
    sp = await ps.create("ci")
    sp, cred, secret = await ps.add_password(sp.app_id, display_name="rbac")
    assert len(secret) == 40 and secret[3:6] == "8Q~" and cred.hint == secret[:3]
    raw = (await backend.get(principals.PREFIX + sp.app_id)).value
    assert secret.encode() not in raw and secret[6:].encode() not in raw
    _, again, secret2 = await ps.add_password(sp.app_id)
    assert again.salt != cred.salt and secret2 != secret


async def test_verify_secret(backend):
    ps = Principals(backend)
    sp = await ps.create("ci")
    _, cred, secret = await ps.add_password(sp.app_id)
    found, ok = await ps.verify_secret(sp.app_id, secret)
    assert ok and found.object_id == sp.object_id and found.passwords == (cred,)
    assert (await ps.verify_secret(sp.app_id.upper(), secret))[1]  # the memo path
    assert (await ps.verify_secret(sp.app_id, secret[:-1] + "x"))[1] is False
    assert await ps.verify_secret("00000000-0000-0000-0000-000000000000", secret) == (None, False)
    await ps.remove_password(sp.app_id, cred.key_id)  # the memo does not outlive the credential
    assert (await ps.verify_secret(sp.app_id, secret))[1] is False
    with pytest.raises(principals.CredentialNotFound):
        await ps.remove_password(sp.app_id, cred.key_id)


async def test_an_expired_secret_does_not_verify(backend):
    clock = ManualClock(1_800_000_000.0)
    ps = Principals(backend, clock=clock)
    sp = await ps.create("ci")
    _, cred, secret = await ps.add_password(sp.app_id, years=1)
    assert cred.start == "2027-01-15T08:00:00Z" and cred.end.startswith("2028-01-15")
    assert (await ps.verify_secret(sp.app_id, secret))[1]
    await clock.advance(366 * 86400)
    assert (await ps.verify_secret(sp.app_id, secret))[1] is False


async def test_federated_credentials(backend):
    ps = Principals(backend)
    sp = await ps.create("wi")
    sp, fic = await ps.add_federated(sp.app_id, name="kube", issuer="https://x/clusters/1/",
                                     subject="system:serviceaccount:default:wi")
    assert fic.audiences == (principals.EXCHANGE_AUDIENCE,) and sp.federated == (fic,)
    with pytest.raises(ValueError):
        await ps.add_federated(sp.app_id, name="KUBE", issuer="i", subject="s")
    sp = await ps.remove_federated(sp.app_id, "kube")
    assert sp.federated == ()


async def test_principals_survive_a_restart(tmp_path: Path):
    url = f"sqlite://{tmp_path / 'lks.db'}"
    b = store.open_store(url)
    await b.start()
    ps = Principals(b)
    sp = await ps.create("ci")
    sp, _, secret = await ps.add_password(sp.app_id)
    sp, _ = await ps.add_federated(sp.app_id, name="f", issuer="https://i/", subject="s", audiences=["a", "b"])
    await b.close()
    b = store.open_store(url)
    await b.start()
    try:
        again = Principals(b)
        assert await again.get(sp.app_id) == sp
        assert (await again.verify_secret(sp.app_id, secret))[1]
    finally:
        await b.close()
