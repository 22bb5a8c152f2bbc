"""Files of any kind and thumbnails in the web app (issue 14), in headless Chromium: a file goes up through the attach
button, shows as a chip (type icon, name, size) on both sides and downloads as an attachment; an image shows its
thumbnail in the timeline and the full picture on click. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import time

from test_web import (  # noqa: F401  (browsers and web_server are fixtures)
    PHONE,
    browsers,
    png_bytes,
    pytestmark,
    web_server,
)
from test_web_messages import chat_item, no_console_errors, people_in_a_chat


def chip(browser, seq: int) -> dict | None:
    return browser.js("""
        const row = document.querySelector(`#messages .message-row[data-seq="${arguments[0]}"]`);
        const chip = row && row.querySelector('.file-chip');
        if (!chip) return null;
        return {href: chip.getAttribute('href'), download: chip.getAttribute('download'),
                icon: chip.querySelector('.file-icon').textContent, name: chip.querySelector('.file-name').textContent,
                meta: chip.querySelector('.file-meta').textContent, link: chip.tagName === 'A'};""", seq)


def test_a_file_shows_as_a_chip_that_downloads_and_an_image_as_its_thumbnail(web_server, browsers, tmp_path):
    tag, ann, ben, chat_id = people_in_a_chat(web_server, browsers, ["Here come the papers"])
    document = tmp_path / "Budget 2026 – draft.pdf"
    document.write_bytes(b"%PDF-1.4\n" + b"0" * 3000 + b"\n%%EOF\n")

    ann.find("#file-input").send_keys(str(document))
    ann.wait_visible("#attachment")
    assert not ann.visible("#attachment-preview") and ann.visible("#attachment-file-icon")
    assert ann.text("#attachment-name") == document.name and "PDF" in ann.text("#attachment-size")
    ann.screenshot("40-file-attached")
    ann.find("#message-input").send_keys("\n")
    ann.wait_hidden("#attachment")

    shown = ben.wait(lambda: chip(ben, 2), "the file chip in Ben's chat")
    assert shown["link"] and shown["href"].startswith("/api/v1/files/") and shown["download"] == document.name, shown
    assert shown["name"] == document.name and shown["icon"] == "📕" and shown["meta"] == "3 KB · PDF", shown
    ben.wait(lambda: (chat_item(ben, chat_id) or {}).get("preview", "").endswith(f"📎 {document.name}"), "the file in Ben's list")
    # What the link downloads: the bytes, as an attachment under its name, never rendered.
    headers = ben.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(async r => done({status: r.status, size: (await r.arrayBuffer()).byteLength,
            disposition: r.headers.get('content-disposition'), type: r.headers.get('content-type'),
            nosniff: r.headers.get('x-content-type-options'), csp: r.headers.get('content-security-policy')}));""", shown["href"])
    assert headers["status"] == 200 and headers["size"] == document.stat().st_size, headers
    assert headers["type"] == "application/pdf" and headers["nosniff"] == "nosniff", headers
    assert headers["csp"] == "sandbox; default-src 'none'", headers
    assert headers["disposition"].startswith('attachment; filename="Budget 2026 _ draft.pdf"; filename*=UTF-8\'\'Budget%202026%20%E2%80%93'), headers
    ben.screenshot("41-file-chip")

    # An image: the timeline loads the 320 px thumbnail; a click opens the full picture.
    picture = tmp_path / f"wide-{tag}.png"
    picture.write_bytes(png_bytes(1200, 800))
    ann.find("#file-input").send_keys(str(picture))
    ann.wait_visible("#attachment")
    assert ann.visible("#attachment-preview") and "1200×800" in ann.text("#attachment-size")
    ann.find("#message-input").send_keys("The view\n")
    row = ben.wait_row("The view", lambda r: r["image"] and r["image"]["complete"] and r["image"]["width"] == 320,
                       "the thumbnail in Ben's timeline", timeout=30)
    assert "/api/v1/files/" in row["image"]["src"], row
    ben.find('#messages .message-row[data-seq="3"] .image-button').click()
    ben.wait(lambda: ben.js("return document.getElementById('image-dialog').open"), "the image dialog")
    full = ben.wait(lambda: ben.js("""
        const img = document.getElementById('image-dialog-img');
        return img.complete && img.naturalWidth ? {src: img.getAttribute('src'), width: img.naturalWidth} : null;"""), "the full image")
    assert full["width"] == 1200 and full["src"] != row["image"]["src"], full
    ben.screenshot("42-full-image-from-thumbnail")
    ben.js("document.getElementById('image-dialog').close()")

    ben.resize(PHONE)
    ben.color_scheme("dark")
    time.sleep(0.3)
    ben.screenshot("43-phone-file-chip-dark")
    no_console_errors(ann, ben)
