"""The web app's message actions in a real browser (issue 13): reply, react, edit, delete, mention, search, and nothing
missed after being offline.

Two people, Ann and Ben, each in headless Chromium (the browsers and the server come from test_web.py), act through the
screens as a person would: the message toolbar and its menu, the keyboard, the emoji picker, the @-completion, the
search box. What one does shows live in the other's browser; what Ben missed while offline shows when he is back,
without a reload. Screenshots go to test-artifacts/screenshots/ (desktop and phone, light and dark).
"""

from __future__ import annotations

import time
import uuid

from harness import expect_status, introduce, sign_in
from test_web import (  # noqa: F401  (browsers and web_server are fixtures)
    DESKTOP,
    PHONE,
    Browser,
    api_for,
    browsers,
    pytestmark,
    sign_in_ui,
    start_chat_in_ui,
    web_server,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# Reading a message row, and acting on it as a person does


def row_css(seq: int) -> str:
    return f'#messages .message-row[data-seq="{seq}"]'


def message_state(browser: Browser, seq: int) -> dict | None:
    """What the row of message `seq` shows: text, edited, tombstone, reactions, quote, mentions, highlight."""
    return browser.js("""
        const row = document.querySelector(`#messages .message-row[data-seq="${arguments[0]}"]`);
        if (!row) return null;
        const text = row.querySelector('.message-text');
        const edited = row.querySelector('.message-edited');
        const quote = row.querySelector('.reply-quote');
        const tombstone = row.querySelector('.message-deleted');
        const scroller = document.getElementById('messages-scroller').getBoundingClientRect();
        const box = row.getBoundingClientRect();
        return {
          text: text ? text.textContent : null,
          deleted: tombstone ? tombstone.textContent : null,
          rowDeleted: row.classList.contains('deleted'),
          edited: edited ? {label: edited.textContent, title: edited.getAttribute('title')} : null,
          reactions: [...row.querySelectorAll('.reaction:not(.reaction-add)')].map(button => ({
            emoji: button.dataset.emoji, count: Number(button.querySelector('.reaction-count').textContent),
            mine: button.getAttribute('aria-pressed') === 'true', title: button.title})),
          quote: quote ? {name: quote.querySelector('.reply-quote-name') ? quote.querySelector('.reply-quote-name').textContent : '',
                          text: quote.querySelector('.reply-quote-text').textContent} : null,
          mentionsMe: row.classList.contains('mentions-me'),
          chips: [...row.querySelectorAll('.mention')].map(chip => ({text: chip.textContent, me: chip.classList.contains('mention-me')})),
          flash: row.classList.contains('flash'),
          inView: box.bottom > scroller.top && box.top < scroller.bottom,
          actions: !!row.querySelector('.message-actions'),
        };""", seq)


def wait_message(browser: Browser, seq: int, predicate, what: str, timeout: float = 15.0) -> dict:
    def check():
        state = message_state(browser, seq)
        return state if state and predicate(state) else None
    return browser.wait(check, what, timeout)


def hover(browser: Browser, seq: int) -> None:
    """Moves the mouse over a message, which shows its toolbar."""
    bubble = browser.find(f"{row_css(seq)} .bubble")
    ActionChains(browser.driver).move_to_element(bubble).perform()
    browser.wait(lambda: browser.js(
        "const a = document.querySelector(arguments[0]); return a && getComputedStyle(a).opacity === '1';",
        f"{row_css(seq)} .message-actions"), "the message toolbar")


def open_menu(browser: Browser, seq: int) -> None:
    hover(browser, seq)
    browser.find(f"{row_css(seq)} .action-more").click()
    browser.wait_visible(".message-menu")


def choose(browser: Browser, action: str) -> None:
    browser.find(f'.message-menu [data-action="{action}"]').click()
    browser.wait_hidden(".message-menu")


def react(browser: Browser, seq: int, emoji: str) -> None:
    hover(browser, seq)
    browser.find(f"{row_css(seq)} .action-react").click()
    browser.wait_visible(".emoji-picker")
    browser.find(f'.emoji-picker [data-emoji="{emoji}"]').click()
    browser.wait_hidden(".emoji-picker")


def edit(browser: Browser, seq: int, text: str) -> None:
    open_menu(browser, seq)
    choose(browser, "edit")
    box = browser.wait_visible(f"{row_css(seq)} .edit-input")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    browser.wait(lambda: not browser.all(f"{row_css(seq)} .edit-input"), "the editor to close")


def delete(browser: Browser, seq: int) -> None:
    open_menu(browser, seq)
    choose(browser, "delete")
    browser.wait(lambda: browser.js("return document.getElementById('delete-dialog').open"), "the delete confirmation")
    browser.find("#delete-confirm").click()
    browser.wait(lambda: not browser.js("return document.getElementById('delete-dialog').open"), "the confirmation to close")


def chat_item(browser: Browser, chat_id: str) -> dict | None:
    return browser.js("""
        const item = document.querySelector(`#chat-list .chat-item[data-chat-id="${arguments[0]}"]`);
        if (!item) return null;
        const badge = item.querySelector('.badge');
        const mention = item.querySelector('.mention-badge');
        return {preview: item.querySelector('.chat-item-preview').textContent,
                badge: badge ? badge.textContent : null, mentions: mention ? mention.textContent : null};""", chat_id)


def post(client, chat_id: str, text: str, **extra) -> dict:
    body = {"text": text, "clientMessageId": str(uuid.uuid4()), **extra}
    return expect_status(client.post(f"/api/v1/chats/{chat_id}/messages", json=body), 201)["message"]


def named_api_user(server, name: str):
    user = sign_in(server)
    expect_status(user.client.patch("/api/v1/me", json={"name": name}), 200)
    return user


def no_console_errors(*browsers_: Browser) -> None:
    """No errors in the consoles, but for the failed requests of a browser that was cut off the network on purpose."""
    for browser in browsers_:
        errors = [entry for entry in browser.collect_console() if entry.get("level") == "SEVERE"
                  and "ERR_INTERNET_DISCONNECTED" not in entry.get("message", "")]
        assert not errors, f"console errors in {browser.name}'s browser: {errors}"


def people_in_a_chat(web_server, browsers, texts: list[str]):
    """Ann and Ben signed in through the screens; Ann starts their chat and writes `texts`; Ben has it open."""
    tag = uuid.uuid4().hex[:6]
    ann, ben = browsers("ann"), browsers("ben")
    sign_in_ui(ann, web_server, name=f"Ann {tag}")
    sign_in_ui(ben, web_server, name=f"Ben {tag}")
    chat_id = start_chat_in_ui(ann, f"Ben {tag}")
    for text in texts:
        ann.send(text)
        ann.wait_row(text, lambda row: row["seq"] is not None)
    ben.wait(lambda: chat_item(ben, chat_id) is not None, "the chat in Ben's list")
    ben.open_chat(chat_id)
    ben.wait_row(texts[-1])
    return tag, ann, ben, chat_id


# ---------------------------------------------------------------------------------------------------------------
# Tests


def test_reply_react_edit_and_delete_show_live_in_the_other_browser(web_server, browsers):
    tag, ann, ben, chat_id = people_in_a_chat(web_server, browsers, ["Lunch at noon?", "The usual place", "Bring the slides"])
    ann_name, ben_name = f"Ann {tag}", f"Ben {tag}"

    # Ben replies to the first message: its preview shows above the composer, then as a quote in both timelines.
    open_menu(ben, 1)
    # Someone else's message: reply and react, not edit or delete.
    assert [item.get_attribute("data-action") for item in ben.all(".message-menu .menu-item")] == ["reply", "react"]
    ben.screenshot("20-message-menu")
    choose(ben, "reply")
    ben.wait_visible("#reply-preview")
    assert ben.text("#reply-preview-name") == ann_name and ben.text("#reply-preview-text") == "Lunch at noon?"
    ben.screenshot("21-reply-preview")
    ben.send("Noon works for me")
    ben.wait_hidden("#reply-preview")
    ben.wait_row("Noon works for me", lambda row: row["seq"] == 4)
    assert message_state(ben, 4)["quote"] == {"name": ann_name, "text": "Lunch at noon?"}
    stored = expect_status(api_for(web_server, ann).get(f"/api/v1/chats/{chat_id}/messages"), 200)["messages"]
    assert stored[-1]["replyTo"]["seq"] == 1, stored[-1]
    wait_message(ann, 4, lambda s: s["quote"] == {"name": "You", "text": "Lunch at noon?"}, "the quote in Ann's browser")

    # Clicking the quote jumps to the original and highlights it.
    ann.find(f"{row_css(4)} .reply-quote").click()
    wait_message(ann, 1, lambda s: s["flash"] and s["inView"], "the original highlighted")

    # Ann reacts with the picker; Ben sees the count and who; Ben's click adds his, a second click takes it back.
    react(ann, 4, "👍")
    wait_message(ann, 4, lambda s: s["reactions"] == [{"emoji": "👍", "count": 1, "mine": True, "title": "You reacted with 👍"}],
                 "Ann's reaction in her browser")
    state = wait_message(ben, 4, lambda s: [r["count"] for r in s["reactions"]] == [1], "Ann's reaction in Ben's browser")
    assert not state["reactions"][0]["mine"] and ann_name in state["reactions"][0]["title"], state
    ben.find(f'{row_css(4)} .reaction[data-emoji="👍"]').click()
    wait_message(ann, 4, lambda s: s["reactions"] and s["reactions"][0]["count"] == 2 and ben_name in s["reactions"][0]["title"],
                 "two reactions in Ann's browser")
    wait_message(ben, 4, lambda s: s["reactions"] and s["reactions"][0]["mine"] and s["reactions"][0]["count"] == 2, "Ben's own reaction")
    ben.screenshot("22-reactions")
    ben.find(f'{row_css(4)} .reaction[data-emoji="👍"]').click()
    wait_message(ann, 4, lambda s: s["reactions"] and s["reactions"][0]["count"] == 1, "Ben's reaction taken back")

    # Ann edits with the keyboard only: the menu button, the arrow keys, Enter; Escape leaves the editor unchanged.
    ann.js("arguments[0].focus()", ann.find(f"{row_css(2)} .action-more"))
    ann.wait(lambda: ann.js("return getComputedStyle(document.activeElement.closest('.message-actions')).opacity") == "1",
             "the toolbar shown for the focused button")
    ann.driver.switch_to.active_element.send_keys(Keys.ENTER)
    ann.wait_visible(".message-menu")
    assert [item.get_attribute("data-action") for item in ann.all(".message-menu .menu-item")] == ["reply", "react", "edit", "delete"]
    focused = lambda: ann.js("return document.activeElement.dataset.action || null")  # noqa: E731
    assert focused() == "reply"
    while focused() != "edit":
        ann.driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    ann.driver.switch_to.active_element.send_keys(Keys.ENTER)
    box = ann.wait_visible(f"{row_css(2)} .edit-input")
    assert box.get_attribute("value") == "The usual place" and ann.js("return document.activeElement === arguments[0]", box)
    box.send_keys(" (maybe not)")
    box.send_keys(Keys.ESCAPE)
    wait_message(ann, 2, lambda s: s["text"] == "The usual place" and s["edited"] is None, "the edit cancelled")
    edit(ann, 2, "The new place on 5th")
    state = wait_message(ben, 2, lambda s: s["text"] == "The new place on 5th" and s["edited"], "the edit in Ben's browser")
    assert state["edited"]["label"] == "(edited)" and state["edited"]["title"].startswith("Edited "), state

    # An edit of a message someone replied to updates the reply's quote.
    edit(ann, 1, "Lunch at 12:30?")
    wait_message(ben, 4, lambda s: s["quote"] and s["quote"]["text"] == "Lunch at 12:30?", "the quote following the edit")
    ben.screenshot("23-edited-and-quoted")

    # Ann deletes with a confirmation: Ben sees a tombstone; a quote of a deleted message says so.
    delete(ann, 3)
    state = wait_message(ben, 3, lambda s: s["deleted"] == "Message deleted", "the tombstone in Ben's browser")
    assert state["text"] is None and not state["actions"], state
    delete(ann, 1)
    wait_message(ben, 4, lambda s: s["quote"] and s["quote"]["text"] == "Original message deleted", "the quote of a deleted message")
    stored = expect_status(api_for(web_server, ben).get(f"/api/v1/chats/{chat_id}/messages"), 200)["messages"]
    assert [m["kind"] for m in stored] == ["deleted", "text", "deleted", "text"], stored
    assert stored[1]["text"] == "The new place on 5th" and stored[1].get("editedAt"), stored[1]
    ben.screenshot("24-tombstone-light")
    for browser in (ann, ben):
        browser.color_scheme("dark")
    react(ann, 2, "🎉")
    wait_message(ben, 2, lambda s: [r["emoji"] for r in s["reactions"]] == ["🎉"], "a reaction in the dark")
    time.sleep(0.3)
    ben.screenshot("25-message-actions-dark")
    open_menu(ann, 2)
    ann.screenshot("25-message-menu-dark")
    ann.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    ann.wait_hidden(".message-menu")

    # A phone-sized screen: the same chat, light and dark.
    ben.resize(PHONE)
    time.sleep(0.3)
    ben.screenshot("26-phone-messages-dark")
    ben.color_scheme("light")
    hover(ben, 4)
    time.sleep(0.2)
    ben.screenshot("26-phone-messages-light")
    ben.resize(DESKTOP)
    no_console_errors(ann, ben)


def test_a_reply_jumps_to_an_original_far_back_loading_the_history_around_it(web_server, browsers):
    tag = uuid.uuid4().hex[:6]
    ben = browsers("ben")
    sign_in_ui(ben, web_server, name=f"Ben {tag}")
    writer = named_api_user(web_server, f"Ann {tag}")
    chat = expect_status(writer.client.post("/api/v1/chats", json={"userId": ben.session()["user"]["id"]}), 201)["chat"]
    for i in range(1, 121):
        post(writer.client, chat["id"], f"note number {i}")
    post(writer.client, chat["id"], "About the third note", replyToSeq=3)

    ben.open_chat(chat["id"])
    ben.wait(lambda: message_state(ben, 121) is not None, "the reply")
    assert message_state(ben, 121)["quote"] == {"name": f"Ann {tag}", "text": "note number 3"}
    assert message_state(ben, 3) is None, "the original was loaded before the jump"
    ben.find(f"{row_css(121)} .reply-quote").click()
    wait_message(ben, 3, lambda s: s["flash"] and s["inView"] and s["text"] == "note number 3", "the original, loaded around and highlighted")
    ben.screenshot("27-jumped-to-original")

    # Back to the newest messages with the jump button; a message sent now shows at the bottom.
    ben.wait_visible("#jump-button").click()
    ben.wait(lambda: (message_state(ben, 121) or {}).get("inView"), "the newest messages again")
    ben.send("Got it")
    ben.wait_row("Got it", lambda row: row["seq"] == 122)
    assert [row["seq"] for row in ben.rows()][-3:] == [120, 121, 122]
    no_console_errors(ben)


def test_mentions_complete_highlight_and_badge_the_chat(web_server, browsers):
    tag = uuid.uuid4().hex[:6]
    ann, ben = browsers("ann"), browsers("ben")
    sign_in_ui(ann, web_server, name=f"Ann {tag}")
    sign_in_ui(ben, web_server, name=f"Ben {tag}")
    carol = named_api_user(web_server, f"Carol {tag}")
    ben_id = ben.session()["user"]["id"]
    introduce(carol, [ann.session()["user"]["id"]])
    expect_status(api_for(web_server, ben).post("/api/v1/chats", json={"userId": ann.session()["user"]["id"]}), 201)
    group = expect_status(api_for(web_server, ann).post("/api/v1/chats", json={
        "name": f"Launch {tag}", "memberIds": [ben_id, carol.user["id"]]}), 201)["chat"]
    ben.wait(lambda: chat_item(ben, group["id"]) is not None, "the group in Ben's list")

    # Ann types "@Be": the members whose name starts so are offered; Enter picks Ben, and the text says "@Ben …".
    ann.open_chat(group["id"])
    box = ann.find("#message-input")
    box.send_keys("Hi @Be")
    ann.wait_visible(".mention-list")
    options = [o.text for o in ann.all(".mention-list .mention-option .person-name")]
    assert options == [f"Ben {tag}"], options
    ann.screenshot("28-mention-completion")
    box.send_keys(Keys.ENTER)
    ann.wait_hidden(".mention-list")
    assert box.get_attribute("value") == f"Hi @Ben {tag} "
    box.send_keys("can you check the launch list?")
    box.send_keys(Keys.ENTER)
    ann.wait_row(f"Hi @Ben {tag} can you check the launch list?", lambda row: row["seq"] == 1)

    # Stored as <@id>, accepted by the server; Ann sees a chip with Ben's name.
    stored = expect_status(api_for(web_server, ann).get(f"/api/v1/chats/{group['id']}/messages"), 200)["messages"][0]
    assert stored["text"] == f"Hi <@{ben_id}> can you check the launch list?" and stored["mentions"] == [ben_id], stored
    assert message_state(ann, 1)["chips"] == [{"text": f"@Ben {tag}", "me": False}]

    # Ben's list shows the mention badge beside the unread count; in the chat the message is highlighted for him.
    item = ben.wait(lambda: (lambda i: i if i and i["mentions"] == "@1" and i["badge"] == "1" else None)(chat_item(ben, group["id"])),
                    "the mention badge in Ben's list")
    assert item["preview"].endswith(f"Hi @Ben {tag} can you check the launch list?"), item
    ben.screenshot("29-mention-badge")
    ben.color_scheme("dark")
    time.sleep(0.3)
    ben.screenshot("29-mention-badge-dark")
    ben.open_chat(group["id"])
    state = wait_message(ben, 1, lambda s: s["mentionsMe"], "the mention highlighted for Ben")
    assert state["chips"] == [{"text": f"@Ben {tag}", "me": True}], state
    ben.screenshot("30-mentioned-dark")
    ben.color_scheme("light")
    time.sleep(0.3)  # the colours change with a short transition
    ben.screenshot("30-mentioned-light")
    ben.wait(lambda: (chat_item(ben, group["id"]) or {}).get("mentions") is None, "the mention badge to go once read")

    # On a phone: the completion list above the composer.
    ann.resize(PHONE)
    ann.find("#message-input").send_keys("@")
    ann.wait_visible(".mention-list")
    assert len(ann.all(".mention-list .mention-option")) == 2
    ann.screenshot("31-phone-mention-completion")
    ann.find("#message-input").send_keys(Keys.ESCAPE)
    ann.wait_hidden(".mention-list")
    ann.resize(DESKTOP)
    no_console_errors(ann, ben)


def test_search_marks_the_words_and_opens_the_chat_at_the_message(web_server, browsers):
    tag = uuid.uuid4().hex[:6]
    ben = browsers("ben")
    sign_in_ui(ben, web_server, name=f"Ben {tag}")
    ben_id = ben.session()["user"]["id"]
    ann = named_api_user(web_server, f"Ann {tag}")
    dan = named_api_user(web_server, f"Dan {tag}")
    chat = expect_status(ann.client.post("/api/v1/chats", json={"userId": ben_id}), 201)["chat"]
    other = expect_status(dan.client.post("/api/v1/chats", json={"userId": ben_id}), 201)["chat"]
    word = f"zebra{tag}"  # a word no other test writes
    for i in range(1, 91):
        text = f"The {word} budget review moved to Thursday" if i == 5 else f"filler message {i}"
        post(ann.client, chat["id"], text)
    post(dan.client, other["id"], f"Is the {word} budget approved?")
    ben.wait(lambda: chat_item(ben, other["id"]) is not None, "both chats in Ben's list")

    # Every chat: both hits, newest first, the words marked.
    search = ben.find("#search-input")
    # Words match whole: the start of one finds nothing, and the list says how to ask for words starting with it.
    search.send_keys(f"{word} thurs")
    hint = ben.wait(lambda: next(iter(ben.all(".search-hint")), None), "the hint about *")
    assert "*" in hint.text and not ben.all(".search-result"), hint.text
    search.send_keys("*")
    hit = ben.wait(lambda: next((r for r in ben.all(".search-result") if r.get_attribute("data-seq") == "5"), None), "the search hit")
    marks = [m.text.lower() for m in hit.find_elements("css selector", "mark")]
    assert marks == [word, "thursday"], marks
    assert f"Ann {tag}" in hit.text and "budget review" in hit.text, hit.text
    search.clear()
    search.send_keys(f"{word} budget")
    ben.wait(lambda: len(ben.all(".search-result")) == 2, "a hit in each chat")
    assert [r.get_attribute("data-chat-id") for r in ben.all(".search-result")] == [other["id"], chat["id"]]
    ben.screenshot("32-search-results")

    # A hit opens its chat at the message, far back in the history, highlighted.
    ben.find(f'.search-result[data-chat-id="{chat["id"]}"]').click()
    ben.wait(lambda: ben.text("#chat-title") == f"Ann {tag}", "the chat of the hit")
    wait_message(ben, 5, lambda s: s["flash"] and s["inView"], "the hit in its chat, highlighted")
    assert message_state(ben, 90) is None, "the whole history was loaded instead of the page around the hit"
    ben.screenshot("33-search-opened-at-message")

    # The chat header's search looks in that chat only.
    ben.find("#chat-search-button").click()
    ben.wait_visible("#search-scope")
    ben.wait(lambda: len(ben.all(".search-result")) == 1, "the hit of this chat only")
    assert ben.all(".search-result")[0].get_attribute("data-chat-id") == chat["id"]
    ben.find("#search-scope-clear").click()
    ben.wait(lambda: len(ben.all(".search-result")) == 2, "both hits again")

    # On a phone, in the dark: the search box and its results.
    ben.resize(PHONE)
    ben.color_scheme("dark")
    ben.js("window.location.hash = '#/'")
    ben.wait_visible("#sidebar")
    time.sleep(0.3)
    ben.screenshot("34-phone-search-dark")
    ben.all(".search-result")[1].click()
    wait_message(ben, 5, lambda s: s["flash"] and s["inView"], "the hit on the phone")
    ben.screenshot("35-phone-search-opened-dark")
    ben.color_scheme("light")
    ben.resize(DESKTOP)
    no_console_errors(ben)


def test_an_edit_a_delete_and_a_reaction_made_while_offline_show_when_back(web_server, browsers):
    """The hard case of issue 13: Ben's browser is offline while Ann edits one message, deletes another and reacts to
    a third; back online, Ben's page shows all three without a reload (it catches up with /changes)."""
    texts = ["This one will change", "This one will go", "This one gets a reaction"]
    tag, ann, ben, chat_id = people_in_a_chat(web_server, browsers, texts)
    ben.js("window.__sameDocument = true")

    ben.network(False)
    ben.wait_visible("#connection-banner")
    edit(ann, 1, "Changed while Ben was away")
    delete(ann, 2)
    react(ann, 3, "🚀")
    wait_message(ann, 3, lambda s: [r["emoji"] for r in s["reactions"]] == ["🚀"], "Ann's reaction")
    time.sleep(1.0)
    assert [message_state(ben, seq)["text"] for seq in (1, 2, 3)] == texts, "Ben's offline page changed"
    ben.screenshot("36-offline-before-catch-up")

    ben.network(True)
    ben.wait_hidden("#connection-banner", timeout=20)
    wait_message(ben, 1, lambda s: s["text"] == "Changed while Ben was away" and s["edited"], "the edit made while offline", timeout=20)
    wait_message(ben, 2, lambda s: s["deleted"] == "Message deleted", "the delete made while offline")
    wait_message(ben, 3, lambda s: s["reactions"] == [{"emoji": "🚀", "count": 1, "mine": False, "title": f"Ann {tag} reacted with 🚀"}],
                 "the reaction made while offline")
    assert ben.js("return window.__sameDocument === true"), "the page was reloaded"
    ben.screenshot("37-back-online-caught-up")

    # Live again: the next change arrives as an event.
    react(ann, 1, "👀")
    wait_message(ben, 1, lambda s: [r["emoji"] for r in s["reactions"]] == ["👀"], "a live reaction after the catch-up")
    no_console_errors(ann, ben)
