"""Large YAML bodies decode in a worker process (`lks.kube.http.offload`): PyYAML spends seconds
and hundreds of MiB on a few MiB of tiny nodes, which on the event loop would stall every
cluster. Over raw HTTP against the real HTTP layer: the result and the errors are those of an
inline decode, and the loop answers other requests while such a body decodes."""

from __future__ import annotations

import asyncio
import os

import orjson
import pytest

from lks.kube import errors
from lks.kube.http import negotiation, offload

from .conftest import AUTH

CMS = "/clusters/c1/api/v1/namespaces/default/configmaps"


async def _post(client, body: bytes, ctype: str = "application/yaml", path: str = CMS):
    resp = await client.post(path, data=body, headers={**AUTH, "Content-Type": ctype})
    return resp.status, orjson.loads(await resp.read())


async def test_a_large_yaml_body_decodes_off_the_loop_as_it_would_on_it(client):
    keys = 20_000  # ~200 KiB: past the threshold
    body = ("metadata: {name: big}\ndata:\n" + "".join(f"  k{i}: v{i}\n" for i in range(keys))).encode()
    assert len(body) > offload.OFF_LOOP_BYTES
    status, obj = await _post(client, body)
    assert status == 201, obj
    assert len(obj["data"]) == keys and obj["data"]["k19999"] == "v19999"
    # an apply patch too (its JSON form stays on the loop; YAML goes to the worker)
    applied = b"apiVersion: v1\nkind: ConfigMap\n" + body.replace(b"name: big", b"name: applied")
    resp = await client.patch(CMS + "/applied", data=applied, params={"fieldManager": "m"},
                              headers={**AUTH, "Content-Type": "application/apply-patch+yaml"})
    assert resp.status == 201, await resp.text()
    assert len(orjson.loads(await resp.read())["data"]) == keys
    # an error raised in the worker is the inline decode's error
    status, small = await _post(client, b"metadata: {name: bad\n")
    status_big, big = await _post(client, b"metadata: {name: bad\n" + b"#" * offload.OFF_LOOP_BYTES)
    assert status == status_big == 400
    assert big["message"].split(" (")[0] == small["message"].split(" (")[0]
    assert "error converting YAML to JSON: yaml: line" in big["message"]


async def test_the_loop_serves_while_a_dense_yaml_body_decodes(client):
    dense = ("metadata: {name: dense, annotations: {a: b}}\nx: [" + ",".join(["1"] * 400_000) + "]\n").encode()
    create = asyncio.ensure_future(_post(client, dense))
    await asyncio.sleep(0)  # the POST is on its way
    for _ in range(5):
        resp = await client.get("/clusters/c1/version", headers=AUTH)
        assert resp.status == 200
    assert not create.done()  # answered while the dense body was still decoding
    status, obj = await create
    assert status == 201 and obj["metadata"]["name"] == "dense"


async def test_a_worker_that_dies_is_a_500_and_the_next_body_decodes():
    with pytest.raises(errors.APIError) as err:
        await offload.run(os._exit, 1)  # as when the system kills it for its memory
    assert err.value.code == 500
    assert await offload.run(negotiation.decode_body, b"a: [1, 2]", "application/yaml") == {"a": [1, 2]}
