"""Token issuer benchmark, in process on the SQLite store.

Figures: access tokens issued per second by the token endpoint's logic (client credentials with
a client secret already verified once, so the figure is signing plus the principal's read) and
over HTTP (the real `IdentityAPI` on a local aiohttp server, form-encoded POSTs as msal sends
them, 32 concurrent clients); the first check of a client secret (scrypt, ms); ARM
authentication p50 (µs, `ManagementAPI.authenticate`'s token path) of a token seen before (its
signature check remembered) and of one seen for the first time.

Run: `.venv/bin/python bench/identity_bench.py`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from lks import store
from lks.identity import authentication
from lks.identity.issuer import Issuer
from lks.identity.principals import Principals
from lks.identity.routes import IdentityAPI
from lks.identity.tokens import Tokens
from lks.kube.serviceaccounts import SigningKey

TENANT = "0b6c3b5c-6c0c-4a3e-9d61-6f1f0b1f7a11"
SCOPE = "https://management.lks//.default"


def _p50(times: list[int]) -> float:
    times.sort()
    return times[len(times) // 2] / 1000


async def _http_tokens(issuer: Issuer, form: dict[str, str], n: int = 2_000, concurrency: int = 32) -> float:
    app = web.Application()
    app.add_routes(IdentityAPI(issuer).aiohttp_routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/{TENANT}/oauth2/v2.0/token"
    counter = iter(range(n))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def worker() -> None:
                for _ in counter:
                    async with http.post(url, data=form) as r:
                        if r.status != 200:
                            raise RuntimeError(f"token failed: {r.status} {await r.text()}")
                        await r.read()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - start)
    finally:
        await runner.cleanup()


async def run() -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lks-identity-bench-") as tmp:
        backend = store.open_store(f"sqlite://{Path(tmp) / 'bench.db'}")
        await backend.start()
        try:
            issuer = Issuer(tenant_id=TENANT, endpoint="https://127.0.0.1:8443", principals=Principals(backend),
                            tokens=Tokens(key=SigningKey.generate(), tenant_id=TENANT))
            sp = await issuer.principals.create("bench")
            _, _, secret = await issuer.principals.add_password(sp.app_id)
            form = {"grant_type": "client_credentials", "client_id": sp.app_id, "client_secret": secret,
                    "scope": SCOPE}

            t = time.perf_counter()
            await issuer.token(TENANT, form)  # the secret's first check: scrypt
            out["client secret, first check (ms)"] = (time.perf_counter() - t) * 1000

            n = 2_000
            t = time.perf_counter()
            tokens = [(await issuer.token(TENANT, form))["access_token"] for _ in range(n)]
            out["tokens issued/s (in process)"] = n / (time.perf_counter() - t)
            out["tokens issued/s (HTTP, 32 clients)"] = await _http_tokens(issuer, form)

            audiences = issuer.arm_audiences
            first, again = [], []
            for token in tokens:
                t0 = time.perf_counter_ns()
                authentication.caller(issuer, token, audiences)
                t1 = time.perf_counter_ns()
                authentication.caller(issuer, token, audiences)
                first.append(t1 - t0)
                again.append(time.perf_counter_ns() - t1)
            out["ARM authentication p50, token seen before (µs)"] = _p50(again)
            out["ARM authentication p50, first sight: RS256 check (µs)"] = _p50(first)
        finally:
            await backend.close()
    return out


if __name__ == "__main__":
    for k, v in asyncio.run(run()).items():
        print(f"{k:<55} {v:>10,.1f}")
