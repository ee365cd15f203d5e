"""The load generator's figures say how many requests failed and why (what a failed load test is read by)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from cluster.loadgen import generate
from tests.live_bot import free_port


async def _run_against_a_flaky_server() -> dict:
    seen = []

    async def webhook(request: web.Request) -> web.Response:
        seen.append(await request.json())
        if len(seen) % 4 == 0:
            return web.Response(status=503, text="replica loading a model")
        return web.json_response([{"text": "hi"}])

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        stop = asyncio.Event()
        task = asyncio.ensure_future(generate(f"http://127.0.0.1:{port}/webhooks/rest/webhook", 30, 2, "t", stop=stop))
        while len(seen) < 20:
            await asyncio.sleep(0.01)
        stop.set()
        run = await task
    finally:
        await runner.cleanup()
    # a server that is gone: no HTTP answer at all
    gone = await generate(f"http://127.0.0.1:{free_port()}/webhooks/rest/webhook", 0.3, 1, "g")
    return {"flaky": run.summary(), "gone": gone.summary()}


def test_failed_requests_are_counted_with_their_reason():
    figures = asyncio.run(_run_against_a_flaky_server())
    flaky = figures["flaky"]
    assert flaky["sent"] >= 20 and flaky["failed"] == flaky["sent"] // 4, flaky
    assert flaky["errors"] == {"503 replica loading a model": flaky["failed"]}, flaky
    gone = figures["gone"]
    assert gone["sent"] > 0 and gone["failed"] == gone["sent"]
    assert all(reason.startswith("ClientConnectorError") for reason in gone["errors"]), gone
