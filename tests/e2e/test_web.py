"""The web app in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium.

Two (or three) people sign in with codes read from the SMTP test server, chat live, type, read, send an image,
reload, lose the network and the server and get everything back, and HTML shows up as text. Screenshots of the
main screens go to test-artifacts/screenshots/ (git-ignored) so a person can look at them.

Set PARLEY_TEST_WEB_DIR to serve the app from a folder (PARLEY_WEB_DIR) instead of the binary's bundled copy.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import time
import uuid
import zlib
from pathlib import Path

import pytest

from harness import REPO_ROOT, Client, expect_status, poll, sign_in

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import JavascriptException, StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

CHROMIUM = os.environ.get("PARLEY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PARLEY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DESKTOP = (1280, 800)
PHONE = (390, 844)
WAIT = 15.0

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)


# ---------------------------------------------------------------------------------------------------------------
# Servers and browsers


def web_env() -> dict[str, str]:
    folder = os.environ.get("PARLEY_TEST_WEB_DIR")
    return {"PARLEY_WEB_DIR": folder} if folder else {}


@pytest.fixture(scope="module")
def web_server(module_launcher, smtp_server):
    """One all-in-one server on SQLite for the module, mailing codes to the SMTP test server."""
    server = module_launcher.parley(backend="sqlite", smtp=smtp_server, env=web_env())
    yield server
    module_launcher.stop(server)


class Browser:
    """One headless Chromium window, with helpers that speak the app's DOM."""

    def __init__(self, name: str, size=DESKTOP):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={size[0]},{size[1]}", "--lang=en-US", "--force-device-scale-factor=1",
                         "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                         "--disable-backgrounding-occluded-windows"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.name = name
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(20)
        self.console: list[dict] = []
        self.resize(size)

    # Window and emulation

    def resize(self, size, mobile: bool | None = None) -> None:
        width, height = size
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 600 if mobile is None else mobile,
        })

    def color_scheme(self, scheme: str) -> None:
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})

    def network(self, online: bool) -> None:
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": not online, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
        })

    def throttle_upload(self, bytes_per_second: int) -> None:
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": bytes_per_second,
        })

    def screenshot(self, name: str) -> Path:
        """Saves the page as it looks (transient toasts removed, so they do not hide what the shot is about)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.js("document.querySelectorAll('.toast').forEach(toast => toast.remove())")
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def collect_console(self) -> list[dict]:
        try:
            self.console.extend(self.driver.get_log("browser"))
        except WebDriverException:
            pass
        return self.console

    def quit(self) -> None:
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    # DOM

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css: str) -> bool:
        try:
            return any(element.is_displayed() for element in self.all(css))
        except StaleElementReferenceException:
            return False

    def text(self, css: str) -> str:
        try:
            return self.find(css).text
        except (WebDriverException, StaleElementReferenceException):
            return ""

    def wait(self, condition, what: str, timeout: float = WAIT):
        def attempt():
            try:
                return condition()
            except (StaleElementReferenceException, JavascriptException):
                return None
        return poll(attempt, timeout, f"{what} in {self.name}'s browser", interval=0.1)

    def wait_visible(self, css: str, timeout: float = WAIT):
        self.wait(lambda: self.visible(css), f"{css} to be visible", timeout)
        return self.find(css)

    def wait_hidden(self, css: str, timeout: float = WAIT):
        self.wait(lambda: not self.visible(css), f"{css} to be hidden", timeout)

    def session(self) -> dict:
        return json.loads(self.js("return localStorage.getItem('parley.session')") or "null")

    # The chat list and the open chat

    def chat_items(self) -> list[dict]:
        return self.js("""
            return [...document.querySelectorAll('#chat-list .chat-item')].map(item => ({
              id: item.dataset.chatId,
              name: item.querySelector('.chat-item-name').textContent,
              preview: item.querySelector('.chat-item-preview').textContent,
              badge: item.querySelector('.badge') ? item.querySelector('.badge').textContent : null,
              online: !!item.querySelector('.online-dot'),
            }));""")

    def rows(self) -> list[dict]:
        return self.js("""
            return [...document.querySelectorAll('#messages .message-row')].map(row => {
              const text = row.querySelector('.message-text');
              const img = row.querySelector('img.message-image');
              return {
                seq: row.dataset.seq ? Number(row.dataset.seq) : null,
                status: row.dataset.status, sender: row.dataset.sender,
                clientMessageId: row.dataset.clientMessageId || null,
                text: text ? text.textContent : '',
                image: img ? {src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth} : null,
                senderName: row.querySelector('.sender-name') ? row.querySelector('.sender-name').textContent : null,
              };
            });""")

    def texts(self) -> list[str]:
        return [row["text"] for row in self.rows()]

    def row_with(self, text: str) -> dict | None:
        return next((row for row in self.rows() if row["text"] == text), None)

    def wait_row(self, text: str, predicate=lambda row: True, what: str | None = None, timeout: float = WAIT) -> dict:
        def find():
            row = self.row_with(text)
            return row if row and predicate(row) else None
        return self.wait(find, what or f"the message {text!r}", timeout)

    def send(self, text: str) -> None:
        box = self.find("#message-input")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def open_chat(self, chat_id: str) -> None:
        self.js("window.location.hash = arguments[0]", f"#/chat/{chat_id}")
        self.wait_visible("#chat-pane")
        self.wait(lambda: self.js("return !document.querySelector('#history-status .loading')"), "the history to load")


@pytest.fixture
def browsers(request):
    """Opens browsers on demand; saves a screenshot and the console of each when the test fails."""
    opened: list[Browser] = []
    failed_before = request.session.testsfailed

    def open_browser(name: str, size=DESKTOP) -> Browser:
        browser = Browser(name, size)
        opened.append(browser)
        return browser

    yield open_browser
    failed = request.session.testsfailed > failed_before
    for browser in opened:
        if failed:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            directory = ARTIFACTS / "failures"
            directory.mkdir(parents=True, exist_ok=True)
            try:
                browser.driver.save_screenshot(str(directory / f"{slug}-{browser.name}.png"))
            except WebDriverException:
                pass
            lines = [f"{entry.get('level')} {entry.get('message')}" for entry in browser.collect_console()]
            (directory / f"{slug}-{browser.name}.console.txt").write_text("\n".join(lines), encoding="utf-8")
        browser.quit()


# ---------------------------------------------------------------------------------------------------------------
# Flows


def codes_sent(server, address: str) -> int:
    return len(server.mailbox.to(address)) if server.mailbox is not None else 0


def request_code_in_ui(browser: Browser, server, address: str) -> None:
    browser.driver.get(server.base_url + "/")
    email = browser.wait_visible("#email-input")
    email.clear()
    email.send_keys(address)
    email.send_keys(Keys.ENTER)
    browser.wait_visible("#code-form")


def sign_in_ui(browser: Browser, server, address: str | None = None, name: str | None = None) -> dict:
    """Signs in through the screens with the code from the mailbox; renames through the profile dialog."""
    address = address or f"web.{uuid.uuid4().hex[:10]}@example.com"
    before = codes_sent(server, address)
    request_code_in_ui(browser, server, address)
    code = server.code_for(address, count=before + 1)
    browser.find(".code-box").send_keys(code)
    browser.wait_visible("#app")
    browser.wait(lambda: browser.session() is not None, "the session to be stored")
    if name:
        rename(browser, name)
    return browser.session()


def rename(browser: Browser, name: str) -> None:
    browser.find("#me-button").click()
    field = browser.wait_visible("#profile-name")
    field.clear()
    field.send_keys(name)
    field.send_keys(Keys.ENTER)
    browser.wait_hidden("#profile-dialog")
    browser.wait(lambda: name in (browser.find("#me-button").get_attribute("title") or ""), "the new name")


def api_for(server, browser: Browser) -> Client:
    """An HTTP client with the access token the browser holds."""
    return server.client.with_token(browser.session()["accessToken"])


def start_chat_in_ui(browser: Browser, other_name: str) -> str:
    search = browser.find("#search-input")
    search.clear()
    search.send_keys(other_name)
    person = browser.wait(lambda: next((item for item in browser.all(".person-item")
                                        if other_name in item.text), None), f"{other_name} in the people search")
    person.click()
    browser.wait_visible("#chat-pane")
    browser.wait(lambda: browser.text("#chat-title") == other_name, "the chat header")
    match = re.match(r"#/chat/(.+)$", browser.js("return window.location.hash"))
    assert match, browser.js("return window.location.hash")
    return match.group(1)


def png_bytes(width: int, height: int, noise: bool = False) -> bytes:
    """A valid RGB PNG: a gradient, or random noise (which does not compress) for a bigger upload."""
    rng = random.Random(7)
    rows = []
    for y in range(height):
        if noise:
            rows.append(b"\x00" + bytes(rng.getrandbits(8) for _ in range(width * 3)))
        else:
            rows.append(b"\x00" + b"".join(bytes(((x * 255) // width, (y * 255) // height, 190)) for x in range(width)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")


def face_png(size: int) -> bytes:
    """A valid RGB PNG of a smiling face on teal: a picture that cannot be mistaken for an initials avatar."""
    def pixel(x: int, y: int) -> bytes:
        u, v = (x + 0.5) / size - 0.5, (y + 0.5) / size - 0.5
        if u * u + v * v > 0.16:
            return bytes((32, 160, 150))
        for eye in (-0.14, 0.14):
            if (u - eye) ** 2 + (v + 0.1) ** 2 < 0.0028:
                return bytes((40, 30, 20))
        if v > 0.04 and 0.045 < u * u + v * v < 0.065:
            return bytes((40, 30, 20))
        return bytes((250, 205, 60))

    rows = [b"\x00" + b"".join(pixel(x, y) for x in range(size)) for y in range(size)]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")


def chat_messages(client: Client, chat_id: str) -> list[dict]:
    messages, after = [], 0
    while True:
        page = expect_status(client.get(f"/api/v1/chats/{chat_id}/messages", params={"after": after, "limit": 200}), 200)
        messages += page["messages"]
        if not page["hasMore"] or not page["messages"]:
            return messages
        after = page["messages"][-1]["seq"]


def assert_dense(messages: list[dict]) -> None:
    seqs = [message["seq"] for message in messages]
    assert seqs == list(range(1, len(seqs) + 1)), f"seqs have gaps or repeats: {seqs}"


# ---------------------------------------------------------------------------------------------------------------
# Tests


def test_the_app_is_served_with_a_strict_content_security_policy(web_server):
    response = web_server.client.get("/")
    assert response.status_code == 200 and "text/html" in response.headers.get("Content-Type", "")
    policy = response.headers.get("Content-Security-Policy", "")
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    html = response.text
    assert "<script>" not in html.replace(" ", "") and " style=" not in html, "the page has inline script or style"
    for asset in ("/app.css", "/js/main.js", "/js/socketio.js", "/favicon.svg"):
        assert web_server.client.get(asset).status_code == 200, asset


def test_sign_in_with_the_code_screens(web_server, browsers):
    browser = browsers("visitor")
    browser.driver.get(web_server.base_url + "/")
    browser.wait_visible("#email-input")
    browser.screenshot("01-sign-in")

    # A typo is caught before anything is sent.
    browser.find("#email-input").send_keys("not-an-address" + Keys.ENTER)
    browser.wait(lambda: "valid email" in browser.text("#email-error"), "the email error")

    address = f"visitor.{uuid.uuid4().hex[:10]}@example.com"
    request_code_in_ui(browser, web_server, address)
    assert browser.text("#code-email") == address
    assert len(browser.all(".code-box")) == 6
    resend = browser.find("#code-resend")
    assert not resend.is_enabled() and re.search(r"Resend code in (1:00|0:[0-5]\d)", resend.text), resend.text
    code = web_server.code_for(address)
    browser.find(".code-box").send_keys(code[:3])
    time.sleep(0.3)
    browser.screenshot("02-code-entry")

    # A wrong code says so and empties the boxes.
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    browser.js("document.querySelectorAll('.code-box').forEach(b => b.value = '')")
    browser.find(".code-box").send_keys(wrong)
    browser.wait(lambda: "not correct" in browser.text("#code-error"), "the wrong-code message")
    assert browser.js("return [...document.querySelectorAll('.code-box')].every(b => b.value === '')")

    # Pasting the code (with a space in it, as mail clients copy it) fills all six boxes and signs in.
    browser.js("""
        const data = new DataTransfer();
        data.setData('text/plain', arguments[0]);
        document.querySelector('.code-box').dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
    """, f"{code[:3]} {code[3:]}")
    browser.wait_visible("#app")
    browser.wait(lambda: "No chats yet" in browser.text("#chat-list"), "the empty chat list")
    session = browser.session()
    assert session["user"]["email"] == address and session["refreshToken"]

    # A reload stays signed in.
    browser.driver.refresh()
    browser.wait_visible("#app")
    assert not browser.visible("#auth")

    # An access token about to expire is refreshed silently: new tokens, still signed in, still working.
    browser.js("""
        const session = JSON.parse(localStorage.getItem('parley.session'));
        session.expiresAt = Date.now() + 20000;
        localStorage.setItem('parley.session', JSON.stringify(session));""")
    browser.driver.refresh()
    browser.wait_visible("#app")
    browser.wait(lambda: browser.session()["refreshToken"] != session["refreshToken"], "the silent token refresh")
    session = browser.session()
    assert session["expiresAt"] / 1000 - time.time() > 800, session["expiresAt"]
    expect_status(web_server.client.get("/api/v1/me", token=session["accessToken"]), 200)
    assert browser.visible("#app") and not browser.visible("#auth")

    # Signing out forgets the tokens here and revokes the refresh token on the server.
    browser.find("#me-button").click()
    browser.wait_visible("#logout-button").click()
    browser.wait_visible("#email-input")
    assert browser.session() is None
    refused = web_server.client.post("/api/v1/token/refresh", json={"refreshToken": session["refreshToken"]}, token=None)
    assert refused.status_code == 401, refused.text


def test_two_people_chat_live(web_server, browsers, tmp_path):
    tag = uuid.uuid4().hex[:6]
    alice_name, bob_name = f"Alice {tag}", f"Bob {tag}"
    alice, bob = browsers("alice"), browsers("bob")
    sign_in_ui(alice, web_server, name=alice_name)
    sign_in_ui(bob, web_server, name=bob_name)

    # Alice finds Bob by name and writes; Bob's list shows the chat live, unread, with the preview.
    chat_id = start_chat_in_ui(alice, bob_name)
    alice.send("Hello Bob!")
    alice.wait_row("Hello Bob!", lambda row: row["status"] in ("sent", "seen") and row["seq"] == 1)
    item = bob.wait(lambda: next((c for c in bob.chat_items() if c["id"] == chat_id and c["badge"] == "1"), None),
                    "the new chat with one unread message")
    assert item["name"] == alice_name and item["preview"] == "Hello Bob!", item
    bob.wait(lambda: next((c for c in bob.chat_items() if c["id"] == chat_id and c["online"]), None), "Alice's online dot")
    bob.screenshot("03-chat-list")

    # Bob opens it: Alice's message turns seen (double tick), and the badge goes.
    bob.find(f'.chat-item[data-chat-id="{chat_id}"]').click()
    bob.wait_row("Hello Bob!", lambda row: row["sender"] == "other")
    alice.wait_row("Hello Bob!", lambda row: row["status"] == "seen", "the seen tick")
    bob.wait(lambda: next((c for c in bob.chat_items() if c["id"] == chat_id and c["badge"] is None), None), "the badge to go")
    assert bob.text("#chat-title") == alice_name
    bob.wait(lambda: bob.text("#chat-subtitle") == "online", "Alice online in the header")

    # Typing shows with Bob's name while he types, and goes when he sends.
    box = bob.find("#message-input")
    box.send_keys("Hi Alice, good to")
    alice.wait(lambda: f"{bob_name} is typing" in alice.text("#typing-line"), "the typing indicator")
    assert alice.text("#chat-subtitle") == "typing…"
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys(" see you here." + Keys.ENTER)
    alice.wait_row("Hi Alice, good to\n see you here.", what="Bob's two-line message")
    alice.wait(lambda: alice.text("#typing-line") == "", "the typing indicator to go", timeout=8)

    # HTML and script arrive as text; URLs become safe links, other schemes do not.
    payload = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold?</b>'
    bob.send(payload)
    alice.wait_row(payload, what="the HTML payload shown as text")
    assert alice.js("return window.__pwned === undefined && document.querySelectorAll('.message-text img, .message-text script, .message-text b').length === 0")
    bob.send("Docs at https://example.com/guide?page=2. Not this: javascript:alert(1)")
    alice.wait_row("Docs at https://example.com/guide?page=2. Not this: javascript:alert(1)")
    links = alice.js("""
        return [...document.querySelectorAll('.message-text a')].map(a => ({href: a.href, rel: a.rel, target: a.target, text: a.textContent}));""")
    assert links == [{"href": "https://example.com/guide?page=2", "rel": "noopener noreferrer nofollow", "target": "_blank",
                      "text": "https://example.com/guide?page=2"}], links

    # A bidi override in a message ("\u202e" shows what follows right to left) is kept, but isolated: it cannot
    # reorder the time after the text, nor the chat list's name and preview.
    spoof = "invoice \u202egnp.exe"
    bob.send(spoof)
    alice.wait_row(spoof, what="the message with a bidi override")
    isolation = alice.js("""
        const texts = [...document.querySelectorAll('.message-text')];
        const preview = document.querySelector('#chat-list .chat-item .preview-text bdi.preview-message');
        return {text: getComputedStyle(texts[texts.length - 1]).unicodeBidi,
                preview: preview ? getComputedStyle(preview).unicodeBidi : null};""")
    assert isolation == {"text": "isolate", "preview": "isolate"}, isolation

    # An image: preview before sending, upload progress while it goes up, then the picture on both sides.
    picture = tmp_path / f"gradient-{tag}.png"
    picture.write_bytes(png_bytes(360, 240, noise=True))
    alice.find("#file-input").send_keys(str(picture))
    alice.wait_visible("#attachment")
    assert alice.find("#attachment-preview").get_attribute("src").startswith("blob:")
    assert "360×240" in alice.text("#attachment-size")
    alice.find("#message-input").send_keys("Look at this")
    alice.throttle_upload(60_000)
    alice.find("#message-input").send_keys(Keys.ENTER)
    alice.wait(lambda: alice.js("""
        const bar = document.querySelector('.message-row.pending .upload-progress');
        return bar && !bar.hidden && Number(bar.getAttribute('aria-valuenow')) > 0;"""), "the upload progress bar", timeout=5)
    alice.screenshot("04-upload-progress")
    alice.network(True)
    alice.wait_hidden("#attachment")
    sent = alice.wait_row("Look at this", lambda row: row["seq"] is not None and row["image"], "the stored image message", timeout=30)
    assert sent["status"] in ("sent", "seen")
    # Bob's timeline shows the server's thumbnail (320 px on the long side), not the 360 px original.
    got = bob.wait_row("Look at this", lambda row: row["image"] and row["image"]["complete"] and row["image"]["width"] == 320,
                       "the image's thumbnail on Bob's side")
    assert "/api/v1/files/" in got["image"]["src"], got
    alice.wait(lambda: next((c for c in alice.chat_items() if c["id"] == chat_id and c["preview"] == "You: 📷 Look at this"), None),
               "the photo preview in Alice's list")
    alice.wait_row("Look at this", lambda row: row["status"] == "seen", "the image seen")
    alice.screenshot("04-chat-view-with-image")
    alice.color_scheme("dark")
    time.sleep(0.3)
    alice.screenshot("05-chat-view-dark")
    alice.js("window.location.hash = '#/'")
    alice.wait_hidden("#chat-pane")
    alice.screenshot("05-chat-list-dark")
    alice.color_scheme("light")

    # A phone-sized screen shows one pane at a time, with a back button.
    bob.resize(PHONE)
    time.sleep(0.3)
    assert bob.visible("#back-button") and not bob.visible("#sidebar")
    bob.screenshot("06-phone-chat-view")
    bob.find("#back-button").click()
    bob.wait_visible("#sidebar")
    assert not bob.visible("#chat-pane")
    bob.screenshot("07-phone-chat-list")
    bob.resize(DESKTOP)

    # After a reload the history is all there, in order, once.
    expected = ["Hello Bob!", "Hi Alice, good to\n see you here.", payload,
                "Docs at https://example.com/guide?page=2. Not this: javascript:alert(1)", spoof, "Look at this"]
    bob.driver.refresh()
    bob.wait_visible("#app")
    bob.open_chat(chat_id)
    bob.wait(lambda: bob.texts() == expected, "the whole history after the reload")
    assert [row["seq"] for row in bob.rows()] == [1, 2, 3, 4, 5, 6]
    assert bob.rows()[-1]["image"]["src"].startswith("/api/v1/files/")
    stored = chat_messages(api_for(web_server, bob), chat_id)
    assert [m.get("text") for m in stored] == expected
    for browser in (alice, bob):
        errors = [entry for entry in browser.collect_console() if entry.get("level") == "SEVERE"]
        assert not errors, f"console errors in {browser.name}'s browser: {errors}"


def test_offline_then_back_misses_nothing_and_sends_what_was_written(web_server, browsers):
    tag = uuid.uuid4().hex[:6]
    alice, bob = browsers("alice"), browsers("bob")
    sign_in_ui(alice, web_server, name=f"Alice {tag}")
    sign_in_ui(bob, web_server, name=f"Bob {tag}")
    chat_id = start_chat_in_ui(alice, f"Bob {tag}")
    alice.send("before the tunnel")
    bob.wait(lambda: any(c["id"] == chat_id for c in bob.chat_items()), "the chat in Bob's list")
    bob.open_chat(chat_id)
    bob.wait_row("before the tunnel")

    bob.network(False)
    bob.wait_visible("#connection-banner")
    assert "offline" in bob.text("#connection-text").lower()
    # What Alice writes meanwhile, and what Bob writes offline (queued with a clock, not lost).
    away = [f"while you were away {i}" for i in range(1, 4)]
    for text in away:
        alice.send(text)
        alice.wait_row(text, lambda row: row["seq"] is not None)
    bob.send("written in the tunnel")
    queued = bob.wait_row("written in the tunnel", lambda row: row["status"] in ("queued", "sending"), "the queued message")
    assert queued["seq"] is None
    bob.screenshot("08-offline")
    time.sleep(1.0)
    assert alice.row_with("written in the tunnel") is None

    bob.network(True)
    bob.wait_hidden("#connection-banner", timeout=20)
    bob.wait(lambda: bob.texts() == ["before the tunnel", *away, "written in the tunnel"]
             and bob.rows()[-1]["seq"] == 5, "the missed messages and the sent one, in order", timeout=20)
    alice.wait_row("written in the tunnel", lambda row: row["seq"] == 5)
    time.sleep(1.0)
    for browser in (alice, bob):
        texts = browser.texts()
        assert texts == ["before the tunnel", *away, "written in the tunnel"], (browser.name, texts)
        assert [row["seq"] for row in browser.rows()] == [1, 2, 3, 4, 5], (browser.name, browser.rows())
    stored = chat_messages(api_for(web_server, bob), chat_id)
    assert [m["text"] for m in stored] == ["before the tunnel", *away, "written in the tunnel"]
    assert_dense(stored)


def test_a_server_restart_is_survived(launcher, browsers):
    smtp = launcher.smtp()
    server = launcher.parley(backend="sqlite", smtp=smtp, env=web_env())
    tag = uuid.uuid4().hex[:6]
    alice, bob = browsers("alice"), browsers("bob")
    sign_in_ui(alice, server, name=f"Alice {tag}")
    sign_in_ui(bob, server, name=f"Bob {tag}")
    chat_id = start_chat_in_ui(alice, f"Bob {tag}")
    alice.send("see you after the restart")
    bob.wait(lambda: any(c["id"] == chat_id for c in bob.chat_items()), "the chat in Bob's list")
    bob.open_chat(chat_id)
    bob.wait_row("see you after the restart")

    status = server.stop()
    assert status == 0, f"parley exited with {status} on SIGTERM"
    for browser in (alice, bob):
        browser.wait_visible("#connection-banner", timeout=20)
    alice.send("written while the server was down")
    alice.wait_row("written while the server was down", lambda row: row["status"] in ("queued", "sending"))

    server.start()
    for browser in (alice, bob):
        browser.wait_hidden("#connection-banner", timeout=30)
    bob.wait_row("written while the server was down", lambda row: row["seq"] == 2, timeout=20)
    alice.wait_row("written while the server was down", lambda row: row["status"] == "seen", timeout=20)
    time.sleep(1.0)
    assert bob.texts() == ["see you after the restart", "written while the server was down"]
    stored = chat_messages(api_for(server, alice), chat_id)
    assert [m["text"] for m in stored] == ["see you after the restart", "written while the server was down"]


def test_history_pages_unread_badge_and_scrolling(web_server, browsers):
    tag = uuid.uuid4().hex[:6]
    bob = browsers("bob")
    sign_in_ui(bob, web_server, name=f"Bob {tag}")
    writer = sign_in(web_server)
    expect_status(writer.client.patch("/api/v1/me", json={"name": f"Writer {tag}"}), 200)
    bob_id = bob.session()["user"]["id"]
    chat = expect_status(writer.client.post("/api/v1/chats", json={"userId": bob_id}), 201)["chat"]
    for i in range(1, 121):
        expect_status(writer.client.post(f"/api/v1/chats/{chat['id']}/messages",
                                         json={"text": f"message number {i}", "clientMessageId": f"{tag}-{i}"}), 201)

    # The list shows 99+ for more than 99 unread messages.
    bob.wait(lambda: next((c for c in bob.chat_items() if c["id"] == chat["id"] and c["badge"] == "99+"
                           and c["preview"] == "message number 120"), None), "the 99+ badge and the last preview")

    # Opening shows the latest page; scrolling up loads the older pages until the first message.
    bob.open_chat(chat["id"])
    bob.wait(lambda: bob.rows() and bob.rows()[-1]["seq"] == 120, "the latest message")
    assert len(bob.rows()) <= 100, "the whole history was loaded at once"
    for _ in range(20):
        if bob.rows()[0]["seq"] == 1:
            break
        bob.js("document.getElementById('messages-scroller').scrollTop = 0")
        time.sleep(0.4)
    bob.wait(lambda: bob.rows()[0]["seq"] == 1, "the first message after scrolling up")
    assert [row["seq"] for row in bob.rows()] == list(range(1, 121))

    # A reader who scrolled up is not pulled down by a new message; a button offers the way down.
    bob.js("document.getElementById('messages-scroller').scrollTop = 400")
    time.sleep(0.3)
    before = bob.js("return document.getElementById('messages-scroller').scrollTop")
    expect_status(writer.client.post(f"/api/v1/chats/{chat['id']}/messages",
                                     json={"text": "a new one", "clientMessageId": f"{tag}-new"}), 201)
    bob.wait(lambda: bob.rows()[-1]["text"] == "a new one", "the new message")
    time.sleep(0.3)
    after = bob.js("return document.getElementById('messages-scroller').scrollTop")
    assert abs(after - before) <= 2, f"the view jumped from {before} to {after}"
    bob.wait_visible("#jump-button")
    bob.find("#jump-button").click()
    bob.wait(lambda: bob.js("""const s = document.getElementById('messages-scroller');
                               return s.scrollHeight - s.scrollTop - s.clientHeight < 80;"""), "the view at the bottom")
    bob.wait_hidden("#jump-button")


def test_group_chat_seen_by_all_and_live_order(web_server, browsers):
    tag = uuid.uuid4().hex[:6]
    alice, bob = browsers("alice"), browsers("bob")
    sign_in_ui(alice, web_server, name=f"Alice {tag}")
    sign_in_ui(bob, web_server, name=f"Bob {tag}")
    carol = sign_in(web_server)
    expect_status(carol.client.patch("/api/v1/me", json={"name": f"Carol {tag}"}), 200)
    bob_id = bob.session()["user"]["id"]
    alice_id = alice.session()["user"]["id"]
    # Bob and Carol have written to Alice before: one adds only people one already shares a chat with (issue 14).
    direct = expect_status(api_for(web_server, bob).post("/api/v1/chats", json={"userId": alice_id}), 201)["chat"]
    expect_status(carol.client.post("/api/v1/chats", json={"userId": alice_id}), 201)

    # Alice makes a group with Bob and Carol through the dialog.
    alice.find("#new-group-button").click()
    alice.wait_visible("#group-name").send_keys(f"Trip {tag}")
    for name in (f"Bob {tag}", f"Carol {tag}"):
        search = alice.find("#group-search")
        search.clear()
        search.send_keys(name)
        # The search's own results (Bob and Carol are also among the suggestions, which the results replace).
        option = alice.wait(lambda: next((o for o in alice.all("#group-results .person-option") if name in o.text), None)
                            if alice.text("#group-results .list-note") == "People" else None, f"{name} in the member search")
        option.click()
    assert len(alice.all("#group-chips .chip")) == 2
    alice.screenshot("09-new-group")
    alice.find("#group-create").click()
    alice.wait_hidden("#group-dialog")
    alice.wait(lambda: alice.text("#chat-title") == f"Trip {tag}", "the group header")
    group_id = re.match(r"#/chat/(.+)$", alice.js("return window.location.hash")).group(1)
    assert "3 members" in alice.text("#chat-subtitle")

    alice.send("Who is bringing the tent?")
    alice.wait_row("Who is bringing the tent?", lambda row: row["status"] == "sent" and row["seq"] == 1)
    bob.wait(lambda: any(c["id"] == group_id and c["preview"] == f"Alice {tag}: Who is bringing the tent?"
                         for c in bob.chat_items()), "the group in Bob's list with the sender's name")
    bob.open_chat(group_id)
    row = bob.wait_row("Who is bringing the tent?")
    assert row["senderName"] == f"Alice {tag}"
    # Bob has read it, Carol has not: still one tick. Then Carol reads: seen by all.
    bob.wait(lambda: any(state["userId"] == bob_id and state["lastReadSeq"] >= 1
                         for state in expect_status(carol.client.get(f"/api/v1/chats/{group_id}"), 200)["readState"]),
             "Bob's read pointer on the server")
    time.sleep(0.5)
    assert alice.row_with("Who is bringing the tent?")["status"] == "sent"
    read = carol.client.post(f"/api/v1/chats/{group_id}/read", json={"seq": 1})
    assert read.status_code == 204, read.text
    alice.wait_row("Who is bringing the tent?", lambda row: row["status"] == "seen", "seen by everyone")
    alice.screenshot("10-group-chat")

    # Newest activity first, reordered live: a direct chat with Alice goes above the group when she writes there.
    bob.js("window.location.hash = '#/'")
    expect_status(api_for(web_server, alice).post(f"/api/v1/chats/{direct['id']}/messages",
                                                  json={"text": "hi bob", "clientMessageId": f"{tag}-hi"}), 201)
    bob.wait(lambda: [c["id"] for c in bob.chat_items()][:2] == [direct["id"], group_id], "the direct chat on top")
    expect_status(carol.client.post(f"/api/v1/chats/{group_id}/messages",
                                    json={"text": "I have one", "clientMessageId": f"{tag}-carol"}), 201)
    bob.wait(lambda: [c["id"] for c in bob.chat_items()][:2] == [group_id, direct["id"]], "the group back on top")
    top = bob.chat_items()[0]
    assert top["preview"] == f"Carol {tag}: I have one" and top["badge"] == "1", top
    expect_status(api_for(web_server, alice).post(f"/api/v1/chats/{direct['id']}/messages",
                                                  json={"text": "psst", "clientMessageId": f"{tag}-psst"}), 201)
    bob.wait(lambda: [c["id"] for c in bob.chat_items()][:2] == [direct["id"], group_id], "the direct chat back on top")
    assert alice_id != bob_id


def avatar_state(browser: Browser, css: str) -> dict | None:
    """The avatar at `css`: its picture (src, loaded width) and whether the initials show."""
    return browser.js("""
        const avatar = document.querySelector(arguments[0]);
        if (!avatar) return null;
        const img = avatar.querySelector('img');
        const initials = avatar.querySelector('.avatar-initials');
        return {
          src: img ? img.getAttribute('src') : null, alt: img ? img.getAttribute('alt') : null,
          loaded: !!img && img.complete && img.naturalWidth > 0,
          shown: !!img && getComputedStyle(img).opacity === '1' && getComputedStyle(img).objectFit === 'cover',
          initials: initials && getComputedStyle(initials).visibility !== 'hidden' ? initials.textContent : null,
        };""", css)


def test_profile_photo_is_seen_by_others_and_can_be_removed(web_server, browsers, tmp_path):
    tag = uuid.uuid4().hex[:6]
    alice_name, bob_name = f"Alice {tag}", f"Bob {tag}"
    alice_initials = ("A" + tag[0]).upper()
    alice, bob = browsers("alice"), browsers("bob")
    sign_in_ui(alice, web_server, name=alice_name)
    sign_in_ui(bob, web_server, name=bob_name)
    chat_id = start_chat_in_ui(alice, bob_name)
    alice.send("New photo coming")
    alice.wait_row("New photo coming", lambda row: row["seq"] == 1)
    row_avatar = f'#chat-list .chat-item[data-chat-id="{chat_id}"] .avatar'
    bob.wait(lambda: (avatar_state(bob, row_avatar) or {}).get("initials") == alice_initials, "Alice's initials in Bob's list")

    # Alice picks a photo in her profile: a preview at once, then the stored picture, in the dialog and the top bar.
    picture = tmp_path / f"avatar-{tag}.png"
    picture.write_bytes(face_png(128))
    alice.find("#me-button").click()
    alice.wait_visible("#profile-dialog")
    assert not alice.visible("#profile-photo-remove")
    alice.find("#profile-photo-input").send_keys(str(picture))
    stored = alice.wait(lambda: (lambda a: a if a and a["loaded"] and a["shown"] and "/api/v1/files/" in (a["src"] or "") else None)(
        avatar_state(alice, "#profile-avatar .avatar")), "the stored photo in the profile dialog", timeout=20)
    assert stored["alt"] and stored["initials"] is None, stored
    alice.wait_visible("#profile-photo-remove")
    alice.wait_hidden("#profile-photo-progress")
    assert alice.text("#profile-photo-change-text") == "Change photo"
    me = expect_status(api_for(web_server, alice).get("/api/v1/me"), 200)
    assert me.get("avatarUrl") and me["avatarUrl"].split("?")[0] in stored["src"], (me, stored)
    alice.wait(lambda: (avatar_state(alice, "#me-button .avatar") or {}).get("loaded"), "the photo in Alice's top bar")
    alice.screenshot("11-profile-photo")
    alice.find("#profile-dialog .dialog-close").click()
    alice.wait_hidden("#profile-dialog")

    # Bob's list is read again (a reload): Alice's photo, loaded, instead of her initials; the header has it too.
    bob.driver.refresh()
    bob.wait_visible("#app")
    seen = bob.wait(lambda: (lambda a: a if a and a["loaded"] and a["shown"] and "/api/v1/files/" in (a["src"] or "") else None)(
        avatar_state(bob, row_avatar)), "Alice's photo in Bob's chat list")
    assert seen["initials"] is None and seen["alt"] == alice_name, seen
    bob.screenshot("11-profile-photo-chat-list")
    bob.open_chat(chat_id)
    bob.wait(lambda: (avatar_state(bob, "#chat-header-avatar .avatar") or {}).get("loaded"), "Alice's photo in the chat header")

    # Alice removes it: her initials come back, in the dialog and the top bar.
    alice.find("#me-button").click()
    alice.wait_visible("#profile-dialog")
    alice.wait_visible("#profile-photo-remove").click()
    alice.wait(lambda: avatar_state(alice, "#me-button .avatar") == {
        "src": None, "alt": None, "loaded": False, "shown": False, "initials": alice_initials}, "Alice's initials in the top bar")
    alice.wait(lambda: (avatar_state(alice, "#profile-avatar .avatar") or {}).get("initials") == alice_initials, "the initials in the dialog")
    alice.wait_hidden("#profile-photo-remove")
    assert alice.text("#profile-photo-change-text") == "Add photo"
    assert not expect_status(api_for(web_server, alice).get("/api/v1/me"), 200).get("avatarUrl")
    for browser in (alice, bob):
        errors = [entry for entry in browser.collect_console() if entry.get("level") == "SEVERE"]
        assert not errors, f"console errors in {browser.name}'s browser: {errors}"


def test_the_socket_renews_its_token_in_band_and_never_drops(launcher, browsers):
    """[web] With 10 s access tokens the app refreshes its token and renews its socket in-band (`auth`): over 25 s, two
    and a half token lifetimes, the server never ends the socket, and messages still arrive live."""
    smtp = launcher.smtp()
    server = launcher.parley(backend="sqlite", smtp=smtp, env={**web_env(), "PARLEY_ACCESS_TOKEN_TTL_SECONDS": "10",
                                                               "PARLEY_SOCKET_TOKEN_GRACE_SECONDS": "0"})
    tag = uuid.uuid4().hex[:6]
    alice = browsers("alice")
    sign_in_ui(alice, server, name=f"Alice {tag}")
    alice_id = alice.session()["user"]["id"]
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        assert not alice.visible("#connection-banner"), "the app showed a connection drop"
        time.sleep(0.25)
    log = server.log_path.read_text(errors="replace")
    assert "socket's authority ended" not in log, "the server ended the app's socket: it did not renew in-band"
    writer = sign_in(server)
    expect_status(writer.client.patch("/api/v1/me", json={"name": f"Writer {tag}"}), 200)
    chat = expect_status(writer.client.post("/api/v1/chats", json={"userId": alice_id}), 201)["chat"]
    expect_status(writer.client.post(f"/api/v1/chats/{chat['id']}/messages",
                                     json={"text": "still live", "clientMessageId": tag}), 201)
    alice.wait(lambda: any(c["id"] == chat["id"] and c["preview"] == "still live" for c in alice.chat_items()),
               "the new chat and its message, live")


def test_the_profile_settings_are_turned_off_and_on_in_one_click(web_server, browsers):
    alice = browsers("alice")
    sign_in_ui(alice, web_server, name=f"Alice {uuid.uuid4().hex[:6]}")
    client = api_for(web_server, alice)
    assert expect_status(client.get("/api/v1/me"), 200)["emailNotifications"] is True
    alice.find("#me-button").click()
    alice.wait_visible("#profile-dialog")
    box = alice.wait_visible("#profile-email-notifications")
    assert box.is_selected()
    alice.screenshot("12-profile-mail-setting")
    # One click saves it: no Save button needed, the server has it at once.
    box.click()
    alice.wait(lambda: expect_status(client.get("/api/v1/me"), 200)["emailNotifications"] is False, "the setting off on the server")
    alice.wait(lambda: not box.is_selected() and box.is_enabled(), "the box unticked and usable")
    alice.find("#profile-dialog .dialog-close").click()
    alice.wait_hidden("#profile-dialog")
    # Opened again (after a reload too), the dialog shows what the server holds.
    alice.driver.refresh()
    alice.wait_visible("#app")
    alice.find("#me-button").click()
    alice.wait_visible("#profile-dialog")
    box = alice.wait_visible("#profile-email-notifications")
    assert not box.is_selected()
    box.click()
    alice.wait(lambda: expect_status(client.get("/api/v1/me"), 200)["emailNotifications"] is True, "the setting on again")
    # Being added to groups is turned off and on the same way, and the other setting stays.
    adds = alice.wait_visible("#profile-group-adds")
    assert adds.is_selected() and expect_status(client.get("/api/v1/me"), 200)["allowGroupAdds"] is True
    adds.click()
    alice.wait(lambda: expect_status(client.get("/api/v1/me"), 200)["allowGroupAdds"] is False, "group adds off on the server")
    alice.wait(lambda: not adds.is_selected() and adds.is_enabled(), "its box unticked and usable")
    assert box.is_selected() and expect_status(client.get("/api/v1/me"), 200)["emailNotifications"] is True
    alice.driver.refresh()
    alice.wait_visible("#app")
    alice.find("#me-button").click()
    alice.wait_visible("#profile-dialog")
    assert not alice.wait_visible("#profile-group-adds").is_selected()
    errors = [entry for entry in alice.collect_console() if entry.get("level") == "SEVERE"]
    assert not errors, f"console errors: {errors}"
