"""Group settings and blocking in the web app, in a real browser (issue 14).

Ann and Ben each in headless Chromium (the browsers and the server come from test_web.py); Cat through the API. Ann
manages the group from its details panel (rename, add, make admin, remove), every change shows as a centred line of
both timelines ("Ann added Cat"), Ben leaves and the group leaves his list, and Ann blocks and unblocks Ben from his
profile (the direct chat's details). Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import time
import uuid

from harness import expect_status
from test_web import (  # noqa: F401  (browsers and web_server are fixtures)
    Browser,
    api_for,
    avatar_state,
    png_bytes,
    browsers,
    pytestmark,
    sign_in_ui,
    web_server,
)
from test_web_messages import chat_item, named_api_user
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


def system_lines(browser: Browser) -> list[str]:
    return browser.js("return [...document.querySelectorAll('#messages .system-line')].map(line => line.textContent)")


def wait_line(browser: Browser, text: str) -> None:
    browser.wait(lambda: text in system_lines(browser), f"the line “{text}” in {browser.name}'s timeline")


def open_details(browser: Browser) -> None:
    browser.find("#chat-header-info").click()
    browser.wait(lambda: browser.js("return document.getElementById('members-dialog').open"), "the chat details")


def close_details(browser: Browser) -> None:
    browser.find("#members-dialog .dialog-close").click()
    browser.wait(lambda: not browser.js("return document.getElementById('members-dialog').open"), "the details to close")


def member_roles(browser: Browser) -> dict:
    return browser.js("""
        const roles = {};
        for (const row of document.querySelectorAll('#members-list .member-item')) roles[row.dataset.userId] = row.dataset.role;
        return roles;""")


def click(browser: Browser, css: str, what: str, text: str | None = None) -> None:
    """Clicks the first element at `css` (containing `text`), again if a re-render replaced it meanwhile: the panel is
    rebuilt whenever the group changes."""
    def attempt():
        try:
            for element in browser.all(css):
                if text is None or text in element.text:
                    element.click()
                    return True
        except StaleElementReferenceException:
            return None
        return None
    browser.wait(attempt, what)


def no_console_errors_but_the_refusal(*browsers_: Browser) -> None:
    """No errors in the consoles but the network log of the one refusal the test asks for (adding a stranger: 403)."""
    for browser in browsers_:
        errors = [entry for entry in browser.collect_console() if entry.get("level") == "SEVERE"
                  and not ("/members - Failed to load resource" in entry.get("message", "") and "403" in entry.get("message", ""))]
        assert not errors, f"console errors in {browser.name}'s browser: {errors}"


def type_into(browser: Browser, css: str, text: str) -> None:
    """Replaces the text of the field at `css`, again if a re-render replaced the field meanwhile."""
    def attempt():
        field = browser.find(css)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)
        return True
    browser.wait(attempt, f"typing into {css}")


def member_button(browser: Browser, user_id: str, action: str) -> None:
    click(browser, f'#members-list .member-item[data-user-id="{user_id}"] [data-action="{action}"]', f"the {action} button of {user_id}")


def test_group_settings_change_the_group_and_show_in_both_timelines(web_server, browsers, tmp_path):
    tag = uuid.uuid4().hex[:6]
    ann, ben = browsers("ann"), browsers("ben")
    sign_in_ui(ann, web_server, name=f"Ann {tag}")
    sign_in_ui(ben, web_server, name=f"Ben {tag}")
    cat = named_api_user(web_server, f"Cat {tag}")
    ann_id, ben_id = ann.session()["user"]["id"], ben.session()["user"]["id"]
    # Ben and Cat have written to Ann before: people one may add to a group.
    direct = expect_status(api_for(web_server, ben).post("/api/v1/chats", json={"userId": ann_id}), 201)["chat"]
    expect_status(cat.client.post("/api/v1/chats", json={"userId": ann_id}), 201)
    group = expect_status(api_for(web_server, ann).post("/api/v1/chats", json={"name": f"Launch {tag}", "memberIds": [ben_id]}),
                          201)["chat"]
    ann.wait(lambda: chat_item(ann, group["id"]) is not None, "the group in Ann's list")
    ben.wait(lambda: chat_item(ben, group["id"]) is not None, "the group in Ben's list")
    ann.open_chat(group["id"])
    ben.open_chat(group["id"])

    # The owner's panel: her role, the others', and what she may do.
    open_details(ann)
    assert member_roles(ann) == {ann_id: "owner", ben_id: "member"}
    assert ann.text(f'#members-list .member-item[data-user-id="{ann_id}"] .role-badge') == "OWNER"

    # Rename: both timelines get the line, both headers the name.
    name = ann.find("#group-settings-name")
    name.clear()
    name.send_keys(f"Launch crew {tag}")
    click(ann, "#group-settings-save", "the rename button")
    wait_line(ann, f"You renamed the group to “Launch crew {tag}”")
    wait_line(ben, f"Ann {tag} renamed the group to “Launch crew {tag}”")
    ben.wait(lambda: ben.text("#chat-title") == f"Launch crew {tag}", "the new name in Ben's header")

    # A photo: uploaded from the panel, it shows in both headers.
    picture = tmp_path / f"group-{tag}.png"
    picture.write_bytes(png_bytes(64, 64))
    ann.find("#group-photo-input").send_keys(str(picture))
    wait_line(ben, f"Ann {tag} changed the group photo")
    for browser in (ann, ben):
        browser.wait(lambda b=browser: (avatar_state(b, "#chat-header-avatar .avatar") or {}).get("loaded")
                     and "/api/v1/files/" in avatar_state(b, "#chat-header-avatar .avatar")["src"], "the group photo in the header")
    ann.wait_visible("#group-photo-remove")

    # Someone Ann shares no chat with is found by the search but cannot be added: the panel says why.
    dan = named_api_user(web_server, f"Dan {tag}")
    type_into(ann, "#group-add-search", f"Dan {tag}")
    click(ann, f'#group-add-results .person-option[data-user-id="{dan.user["id"]}"] [data-action="add"]', "Dan in the add search")
    ann.wait(lambda: ann.visible("#members-error"), "the refusal in the panel")
    assert ann.text("#members-error") == (f"“Dan {tag}” cannot be added: you can add only people you share a chat with"
                                          " who allow being added to groups.")
    assert dan.user["id"] not in member_roles(ann)

    # Add Cat from the search; make Ben an admin.
    type_into(ann, "#group-add-search", f"Cat {tag}")
    click(ann, f'#group-add-results .person-option[data-user-id="{cat.user["id"]}"] [data-action="add"]', "Cat in the add search")
    wait_line(ann, f"You added Cat {tag}")
    wait_line(ben, f"Ann {tag} added Cat {tag}")
    member_button(ann, ben_id, "admin")
    wait_line(ben, f"Ann {tag} made you an admin")
    ann.wait(lambda: member_roles(ann).get(ben_id) == "admin", "Ben's admin badge")
    # Every member's name shows beside their picture, however many buttons their row has.
    names = ann.js("""return [...document.querySelectorAll('#members-list .member-item .person-name')]
        .map(name => ({text: name.firstChild ? name.firstChild.textContent : '', width: name.getBoundingClientRect().width}));""")
    assert [n["text"] for n in names][:1] == [f"Ann {tag}"] and all(n["width"] > 60 for n in names), names
    assert {n["text"] for n in names} == {f"Ann {tag}", f"Ben {tag}", f"Cat {tag}"}, names
    ann.screenshot("40-group-settings")

    # Remove Cat: she is gone from the panel; Cat's list no longer has the group.
    member_button(ann, cat.user["id"], "remove")
    wait_line(ben, f"Ann {tag} removed Cat {tag}")
    ann.wait(lambda: cat.user["id"] not in member_roles(ann), "Cat gone from the members")
    assert all(chat["id"] != group["id"] for chat in expect_status(cat.client.get("/api/v1/chats"), 200)["chats"])
    close_details(ann)
    ann.screenshot("41-group-system-lines")
    # The lines are centred in the timeline.
    centred = ann.js("""
        const line = document.querySelector('#messages .system-line span').getBoundingClientRect();
        const box = document.getElementById('messages').getBoundingClientRect();
        return Math.abs((line.left + line.right) / 2 - (box.left + box.right) / 2);""")
    assert centred < 4, centred

    # Ben leaves from his panel: the group leaves his list and his screen; Ann sees the line.
    open_details(ben)
    click(ben, "#group-leave", "the leave button")
    ben.wait(lambda: chat_item(ben, group["id"]) is None, "the group gone from Ben's list")
    ben.wait(lambda: ben.js("return window.location.hash") in ("", "#/"), "Ben back at the list")
    wait_line(ann, f"Ben {tag} left")
    no_console_errors_but_the_refusal(ann, ben)

    # Blocking from a person's profile: Ann blocks Ben in their direct chat's details.
    ann.open_chat(direct["id"])
    open_details(ann)
    ann.wait(lambda: ann.js("return document.getElementById('block-button') && document.getElementById('block-button').dataset.blocked") == "false",
             "the block button")
    click(ann, "#block-button", "the block button")
    ann.wait(lambda: ann.find("#block-button").get_attribute("data-blocked") == "true", "the unblock button")
    assert ann.text("#block-button") == f"Unblock Ben {tag}"
    ann.screenshot("42-blocked-profile")
    # Her composer says why she cannot write there, instead of failing each send.
    composer = ann.js("const box = document.getElementById('message-input'); return {disabled: box.disabled, hint: box.placeholder};")
    assert composer == {"disabled": True, "hint": f"You block Ben {tag}. Unblock them (tap their name above) to write."}, composer
    # Ben, blocked, cannot tell: his send is answered as any other, and never reaches Ann's screen.
    expect_status(api_for(web_server, ben).post(f"/api/v1/chats/{direct['id']}/messages",
                                                       json={"text": f"kept from ann {tag}", "clientMessageId": tag}), 201)
    time.sleep(1)
    assert f"kept from ann {tag}" not in ann.text("#messages"), "a blocked person's message reached the blocker's screen"
    assert [user["id"] for user in expect_status(api_for(web_server, ann).get("/api/v1/blocks"), 200)["users"]] == [ben_id]
    click(ann, "#block-button", "the block button")
    ann.wait(lambda: ann.find("#block-button").get_attribute("data-blocked") == "false", "the block button again")
    assert ann.js("return document.getElementById('message-input').disabled") is False
    expect_status(api_for(web_server, ben).post(f"/api/v1/chats/{direct['id']}/messages",
                                                 json={"text": "hey", "clientMessageId": tag + "-after"}), 201)
    no_console_errors_but_the_refusal(ann, ben)
