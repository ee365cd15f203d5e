"""The desk page itself in Debian's chromium (no model needed: a fake Rasa HTTP API behind it).

Two agents sign in; a handoff appears in both queues live; one claims it (the
other's claim is refused), reads the transcript (intents on hover), answers and
transfers it. Screenshots: build/test/screenshots/desk-page-*.png.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import pytest
from aiohttp import web

from bot.actions.handoff_queue import HandoffQueue
from desk.accounts import Accounts
from desk.config import DeskConfig
from desk.server import start
from tests.desk.conftest import PASSWORD, ROOT, TOKEN, FakeRasa

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "build" / "test" / "screenshots"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")


@pytest.fixture
def served(tmp_path):
    fake = FakeRasa()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def up():
        app = web.Application()
        fake.routes(app)
        rasa_runner = web.AppRunner(app)
        await rasa_runner.setup()
        site = web.TCPSite(rasa_runner, "127.0.0.1", 0)
        await site.start()
        rasa_url = f"http://127.0.0.1:{rasa_runner.addresses[0][1]}"
        config = DeskConfig(root=tmp_path, db=str(tmp_path / "desk.db"), orders_db=str(tmp_path / "orders.db"),
                            secret_file=str(tmp_path / "secret"), poll_interval_s=0.2, rasa_url=rasa_url,
                            domain=str(ROOT / "domain.yml"))
        desk_runner = await start(config, host="127.0.0.1", port=0, token=TOKEN)
        return rasa_runner, desk_runner

    accounts = Accounts(tmp_path / "desk.db")
    accounts.add("alice", PASSWORD, "agent", "Alice")
    accounts.add("bob", PASSWORD, "agent", "Bob")
    rasa_runner, desk_runner = asyncio.run_coroutine_threadsafe(up(), loop).result(30)
    yield fake, HandoffQueue(tmp_path / "orders.db"), f"http://127.0.0.1:{desk_runner.addresses[0][1]}"
    for runner in (desk_runner, rasa_runner):
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def sign_in(browser, url, username):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(url + "/review")
    expect(page).to_have_url(url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#connection")).to_have_text("live")
    return page


def test_two_agents_one_claim_reply_transfer(served):
    fake, queue, url = served
    expect.set_options(timeout=15_000)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        alice, bob = sign_in(browser, url, "alice"), sign_in(browser, url, "bob")
        fake.conversation("web-7", texts=("order 104233 came broken", "I want a person"), slots={"order_number": "104233"})
        queue.enqueue("web-7", "customer_asked", "socketio", "en", order_number="104233",
                      last_message="I want a person")
        for page in (alice, bob):
            expect(page.locator("#queue li[data-status=waiting]")).to_have_count(1)
            expect(page.locator("#queue li")).to_contain_text("order 104233")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        alice.screenshot(path=str(SCREENSHOTS / "desk-page-queue.png"))
        alice.locator("button.claim").click()
        expect(alice.locator("#conversation-status")).to_contain_text("claimed (alice)")
        expect(bob.locator("#queue li .holder")).to_have_text("with alice")  # bob's queue updates live
        # bob's page had a Claim button a moment ago: a late click is refused by the server.
        late = bob.evaluate("""async () => (await fetch('/api/handoffs/1/claim', {method: 'POST',
            headers: {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})).status""")
        assert late == 409
        first = alice.locator("#transcript .turn.customer").first
        expect(first).to_contain_text("came broken")
        assert "intent: human_handoff" in first.get_attribute("title")
        expect(alice.locator("#orders-list")).to_contain_text("104233")
        alice.fill("#reply-text", "So sorry! A replacement is on its way, no need to send it back.")
        alice.click("#send")
        expect(alice.locator("#transcript .turn.agent")).to_contain_text("replacement is on its way")
        assert fake.appended[-1]["events"][0]["metadata"] == {"agent": "human", "agent_id": "alice"}
        fake.customer_says("web-7", "thank you!")
        expect(alice.locator("#transcript .turn.customer").last).to_contain_text("thank you!")  # live, no reload
        alice.screenshot(path=str(SCREENSHOTS / "desk-page-conversation.png"))
        alice.select_option("#transfer-to", "bob")
        alice.click("#transfer")
        expect(bob.locator("#queue li .holder")).to_have_text("with bob")
        expect(alice.locator("#send")).to_be_disabled()
        browser.close()
