"""The chat widget in a real browser (Debian's chromium, headless) against `kefu run`.

One `kefu run` for the session (tests/bot/conftest.py), one browser for the module.
The last test stops and restarts the server. Screenshots go to build/test/screenshots/.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page, expect  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "build" / "test" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
BOT_TIMEOUT_MS = 30_000
expect.set_options(timeout=BOT_TIMEOUT_MS)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="chromium not installed: run `bash scripts/setup-web.sh --browser` as root")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(viewport=DESKTOP, **kwargs) -> Page:
        context = browser.new_context(viewport=viewport, **kwargs)
        context.set_default_timeout(BOT_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def open_chat(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Chat with us").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.locator(".kefu-input")).to_be_focused()


def send(page: Page, text: str) -> None:
    page.locator(".kefu-input").fill(text)
    page.keyboard.press("Enter")


def bot_messages(page: Page):
    return page.locator(".kefu-msg.kefu-bot")


def test_conversation_with_buttons_survives_a_reload(kefu_server, new_page):
    page = new_page()
    open_chat(page, kefu_server.web_url)
    expect(page.locator("[data-connection=socket]")).to_have_count(1)  # socket.io, not the fallback

    send(page, "hi")
    expect(bot_messages(page).first).to_contain_text("Welcome to Maple Market", ignore_case=True)
    suggestions = page.get_by_role("group", name="Suggested replies")
    expect(suggestions.get_by_role("button")).to_have_text(["Where is my order?", "Return an item", "Delivery times"])
    expect(page.locator(".kefu-typing")).to_be_hidden()
    screenshot(page, "widget-desktop.png")

    suggestions.get_by_role("button", name="Delivery times").click()
    expect(page.locator(".kefu-msg.kefu-user").last).to_contain_text("Delivery times")  # the title, not "/shipping_times"
    expect(bot_messages(page).last).to_contain_text("Standard shipping takes 3-5 business days")
    expect(suggestions).to_have_count(0)  # used replies go away

    page.reload()
    expect(page.get_by_role("dialog")).to_be_visible()  # still open after the reload
    expect(page.locator(".kefu-msg")).to_have_count(4)
    expect(bot_messages(page).last).to_contain_text("Standard shipping")
    expect(page.locator("[data-connection=socket]")).to_have_count(1)

    # Same conversation on the server: the order form continues across the reload.
    send(page, "where is my order?")
    expect(bot_messages(page).last).to_contain_text("order number")
    send(page, "104233")
    expect(bot_messages(page).last).to_contain_text("UPS")

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("button", name="Chat with us")).to_be_focused()


def test_mobile_layout_is_full_screen(kefu_server, new_page):
    page = new_page(MOBILE, is_mobile=True, has_touch=True)
    open_chat(page, kefu_server.web_url)
    send(page, "hello")
    expect(page.get_by_role("group", name="Suggested replies")).to_be_visible()
    box = page.get_by_role("dialog").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, MOBILE["width"], MOBILE["height"])
    expect(page.locator(".kefu-launcher")).to_be_hidden()
    screenshot(page, "widget-mobile.png")
    page.get_by_role("button", name="Close chat").click()
    expect(page.get_by_role("button", name="Chat with us")).to_be_visible()


def test_chinese_labels(kefu_server, new_page):
    page = new_page()
    page.goto(kefu_server.web_url + "/?language=zh")
    page.get_by_role("button", name="联系在线客服").click()
    expect(page.locator(".kefu-input")).to_have_attribute("placeholder", "请输入消息…")
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    expect(page.get_by_role("button", name="关闭聊天")).to_be_visible()


def test_handoff_shows_the_escalated_state(kefu_server, new_page):
    page = new_page()
    open_chat(page, kefu_server.web_url)
    expect(page.locator(".kefu-banner")).to_be_hidden()
    send(page, "I want to talk to a real person")
    expect(bot_messages(page).filter(has_text="member of our support team")).to_have_count(1)
    # Then what happens next: nobody is signed in to the desk here, so never silence but "leave your question".
    expect(bot_messages(page).last).to_contain_text(re.compile(r"agents are busy|available .* nobody can answer live|in the queue"))
    expect(page.locator(".kefu-banner")).to_contain_text("handed over to a person")
    page.reload()
    expect(page.locator(".kefu-banner")).to_be_visible()
    screenshot(page, "widget-handoff-desktop.png")


def test_rest_fallback_when_socketio_is_blocked(kefu_server, new_page):
    page = new_page()
    page.route(re.compile(r"/socket\.io/"), lambda route: route.abort())  # long-polling
    page.route_web_socket(re.compile(r"/socket\.io/"), lambda ws: ws.close())  # and websockets
    open_chat(page, kefu_server.web_url)
    send(page, "hi")  # typed before the fallback kicks in: queued, then sent over REST
    expect(page.locator("[data-connection=rest]")).to_have_count(1)
    expect(bot_messages(page).first).to_contain_text("Welcome to Maple Market", ignore_case=True)
    page.get_by_role("button", name="Return an item").click()
    expect(bot_messages(page).last).to_contain_text("return", ignore_case=True)


def test_bot_text_is_never_html_and_only_http_links_are_links(kefu_server, new_page):
    page = new_page()
    page.route("**/vendor/socket.io.min.js", lambda route: route.abort())  # straight to REST
    replies = [
        {"recipient_id": "x", "text": "<img src=x onerror=\"document.title='pwned'\"> See https://example.com/help. "
                                      "Not javascript:alert(1)"},
        {"recipient_id": "x", "image": "https://example.com/parcel.png"},
        {"recipient_id": "x", "image": "javascript:alert(1)"},
    ]
    page.route("**/webhooks/rest/webhook", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(replies),
        headers={"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*"}))
    open_chat(page, kefu_server.web_url)
    send(page, "show me")
    message = bot_messages(page).first
    expect(message).to_contain_text("<img src=x onerror=")  # shown as text
    expect(message.locator("img")).to_have_count(0)
    links = message.get_by_role("link")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/help")
    expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(page.locator(".kefu-image")).to_have_count(1)
    expect(page.locator(".kefu-image")).to_have_attribute("src", "https://example.com/parcel.png")
    assert page.title() != "pwned"


def test_reconnects_after_a_server_restart_and_delivers_what_was_typed_offline(kefu_server, new_page):
    page = new_page()
    open_chat(page, kefu_server.web_url)
    send(page, "hi")
    expect(bot_messages(page)).to_have_count(1)

    kefu_server.stop()
    expect(page.locator("[data-connection=offline]")).to_have_count(1)
    send(page, "where is my order 583920?")
    pending = page.locator(".kefu-msg.kefu-user").last
    expect(pending).to_have_attribute("data-status", "pending")
    expect(pending).to_contain_text("Not sent yet")

    kefu_server.start()
    expect(page.locator("[data-connection=socket]")).to_have_count(1, timeout=30_000)
    expect(pending).to_have_attribute("data-status", "sent")
    expect(bot_messages(page).last).to_contain_text("583920")
    answered = bot_messages(page).count()
    send(page, "thanks")
    expect(bot_messages(page)).to_have_count(answered + 1)
    screenshot(page, "widget-after-reconnect-desktop.png")
