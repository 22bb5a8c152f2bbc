// The sidebar: the chat list (newest first, live), and search over chats and people.

import { $, h, avatar, icon, debounce, toast } from "./dom.js";
import { formatListTime, formatBadge, messagePreview } from "./format.js";
import * as store from "./store.js";
import { ApiError } from "./api.js";

const list = () => $("#chat-list");
let query = "";
let people = [];
let peopleState = "idle"; // idle | loading | done | error
let peopleController = null;
let scheduled = false;
let wired = false;

export function initChatList() {
  if (wired) return;
  wired = true;
  for (const topic of ["chats", "presence", "typing", "open", "me", "readState"]) store.subscribe(topic, schedule);
  const input = $("#search-input");
  const searchPeople = debounce(runPeopleSearch, 250);
  input.addEventListener("input", () => {
    query = input.value.trim();
    if (!query) {
      people = [];
      peopleState = "idle";
      if (peopleController) peopleController.abort();
    } else {
      peopleState = "loading";
      searchPeople(query);
    }
    schedule();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      input.value = "";
      input.dispatchEvent(new Event("input"));
    } else if (event.key === "Enter") {
      const first = list().querySelector(".chat-item, .person-item");
      if (first) first.click();
    } else if (event.key === "ArrowDown") {
      const first = list().querySelector(".chat-item, .person-item");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  list().addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const items = [...list().querySelectorAll(".chat-item, .person-item")];
    const index = items.indexOf(document.activeElement);
    if (index === -1) return;
    event.preventDefault();
    const next = items[index + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) next.focus();
    else if (event.key === "ArrowUp") $("#search-input").focus();
  });
}

export function clearSearch() {
  const input = $("#search-input");
  if (input.value) {
    input.value = "";
    input.dispatchEvent(new Event("input"));
  }
}

async function runPeopleSearch(text) {
  if (peopleController) peopleController.abort();
  const controller = new AbortController();
  peopleController = controller;
  try {
    const found = await store.searchPeople(text, controller.signal);
    if (controller.signal.aborted || text !== query) return;
    people = found;
    peopleState = "done";
  } catch (error) {
    if (controller.signal.aborted) return;
    people = [];
    peopleState = "error";
    if (!(error instanceof ApiError) || !error.isNetwork) console.warn("people search failed", error);
  }
  schedule();
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    render();
  });
}

function render() {
  const host = list();
  const nodes = [];
  const chats = store.sortedChats();
  const needle = query.toLocaleLowerCase();
  const shown = needle
    ? chats.filter((chat) => store.chatTitle(chat).toLocaleLowerCase().includes(needle)
      || chat.members.some((m) => m.name.toLocaleLowerCase().includes(needle)))
    : chats;

  if (!store.state.chatsLoaded && chats.length === 0) {
    nodes.push(store.state.chatsError
      ? h("div.list-note", h("p", "Couldn't load your chats."), h("button.button.small", { type: "button", onclick: () => store.loadChats().catch(() => {}) }, "Try again"))
      : skeleton());
  } else if (chats.length === 0 && !needle) {
    nodes.push(h("div.list-empty",
      h("div.empty-art.small", { "aria-hidden": "true" }),
      h("p.list-empty-title", "No chats yet"),
      h("p.muted", "Search for someone by name above to start a conversation, or create a group.")));
  } else {
    if (needle) nodes.push(h("h3.list-heading", "Chats"));
    for (const chat of shown) nodes.push(chatItem(chat));
    if (needle && shown.length === 0) nodes.push(h("p.list-note.muted", "No chats match."));
  }

  if (needle) {
    nodes.push(h("h3.list-heading", "People"));
    if (peopleState === "loading" && people.length === 0) nodes.push(h("p.list-note.muted", "Searching…"));
    else if (peopleState === "error") nodes.push(h("p.list-note.muted", "Couldn't search right now."));
    else if (people.length === 0) nodes.push(h("p.list-note.muted", `Nobody called “${query}”.`));
    for (const person of people) nodes.push(personItem(person));
  }
  const focused = host.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = focused ? focused.dataset.chatId || focused.dataset.userId : null;
  host.replaceChildren(...nodes);
  if (focusKey) {
    const again = [...host.querySelectorAll(".chat-item, .person-item")]
      .find((el) => el.dataset.chatId === focusKey || el.dataset.userId === focusKey);
    if (again) again.focus({ preventScroll: true });
  }
  const unread = store.totalUnread();
  document.title = unread > 0 ? `(${formatBadge(unread)}) Parley` : "Parley";
}

function skeleton() {
  const wrap = h("div.skeleton-list", { "aria-label": "Loading chats" });
  for (let i = 0; i < 6; i += 1) {
    wrap.append(h("div.skeleton-item", h("span.skeleton-circle"), h("span.skeleton-lines", h("span"), h("span"))));
  }
  return wrap;
}

function chatItem(chat) {
  const other = store.otherMember(chat);
  const online = other ? store.state.online.has(other.id) : false;
  const active = store.state.openChatId === chat.id;
  const unread = active ? 0 : chat.unreadCount || 0;
  const title = store.chatTitle(chat);
  const last = chat.lastMessage;
  const typers = store.typers(chat.id);

  let preview;
  if (typers.length > 0) {
    const who = chat.kind === "group" ? `${store.memberName(chat, typers[0])} is typing…` : "typing…";
    preview = h("span.chat-item-preview.typing", who);
  } else if (last) {
    const mine = store.state.me && last.senderId === store.state.me.id;
    // The sender's name and the text each in a <bdi>: a bidi override in either cannot reorder what follows it.
    const prefix = mine ? "You: " : chat.kind === "group" ? [h("bdi", store.memberName(chat, last.senderId)), ": "] : "";
    const ticks = mine ? tick(store.messageStatus(chat, last)) : null;
    preview = h("span.chat-item-preview", ticks, h("span.preview-text", prefix, h("bdi.preview-message", messagePreview(last))));
  } else {
    preview = h("span.chat-item-preview.muted", chat.kind === "group" ? "Group created" : "Say hello 👋");
  }
  const when = last ? last.createdAt : chat.updatedAt;
  const item = h(`a.chat-item${active ? ".active" : ""}${unread ? ".unread" : ""}`, {
    href: `#/chat/${encodeURIComponent(chat.id)}`,
    dataset: { chatId: chat.id, unread: String(unread) },
    "aria-current": active ? "page" : null,
    "aria-label": `${title}${unread ? `, ${unread} unread` : ""}`,
  },
  avatar({ id: chat.kind === "group" ? chat.id : other?.id, name: title, avatarUrl: other?.avatarUrl, group: chat.kind === "group", online }),
  h("span.chat-item-body",
    h("span.chat-item-top",
      h("span.chat-item-name", title),
      when ? h("time.chat-item-time", { datetime: when }, formatListTime(when)) : null),
    h("span.chat-item-bottom",
      preview,
      unread ? h("span.badge", { "aria-hidden": "true" }, formatBadge(unread)) : null)));
  item.addEventListener("click", () => {
    if (query) clearSearch();
  });
  return item;
}

function tick(status) {
  return h(`span.tick.tick-${status}`, icon(status === "seen" ? "checks" : "check", status === "seen" ? "Seen" : "Sent"));
}

function personItem(person) {
  const online = store.state.online.has(person.id);
  const existing = store.directChatWith(person.id);
  const item = h("button.person-item", { type: "button", dataset: { userId: person.id } },
    avatar({ id: person.id, name: person.name, avatarUrl: person.avatarUrl, online }),
    h("span.chat-item-body",
      h("span.chat-item-name", person.name),
      h("span.chat-item-preview.muted", existing ? "Open your chat" : "Start a chat")));
  item.addEventListener("click", async () => {
    item.disabled = true;
    try {
      const chatId = existing ? existing.id : await store.openDirectChat(person.id);
      clearSearch();
      window.location.hash = `#/chat/${encodeURIComponent(chatId)}`;
    } catch (error) {
      toast(error.message || "Couldn't start the chat.", { kind: "error" });
    } finally {
      item.disabled = false;
    }
  });
  return item;
}
