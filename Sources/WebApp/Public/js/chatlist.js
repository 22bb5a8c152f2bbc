// The sidebar: the chat list (newest first, live), and search over chats, people and messages (all chats, or the one
// the chat header's search button picked). A message result opens its chat at the message.

import { $, h, avatar, icon, debounce, toast } from "./dom.js";
import { formatListTime, formatBadge, messagePreview, splitMentions } from "./format.js";
import * as store from "./store.js";
import { ApiError } from "./api.js";
import { openChatAt } from "./chatview.js";

const list = () => $("#chat-list");
let query = "";
let people = [];
let peopleState = "idle"; // idle | loading | done | error
let peopleController = null;
let scheduled = false;
let wired = false;
// Message search: results of GET /search for the query (and scope), with the cursor of the next page.
let scope = null; // a chat id: search only there
let found = { query: "", scope: null, results: [], nextCursor: null, state: "idle" }; // idle | loading | done | error
let foundController = null;
const WORD = /[\p{L}\p{N}]/u;

export function initChatList() {
  if (wired) return;
  wired = true;
  for (const topic of ["chats", "presence", "typing", "open", "me", "readState"]) store.subscribe(topic, schedule);
  const input = $("#search-input");
  const searchPeople = debounce(runPeopleSearch, 250);
  const searchMessages = debounce(() => runMessageSearch(), 300);
  input.addEventListener("input", () => {
    query = input.value.trim();
    if (!query) {
      people = [];
      peopleState = "idle";
      if (peopleController) peopleController.abort();
    } else if (!scope) {
      peopleState = "loading";
      searchPeople(query);
    }
    if (!WORD.test(query)) {
      if (foundController) foundController.abort();
      found = { query: "", scope: null, results: [], nextCursor: null, state: "idle" };
    } else {
      found = { ...found, state: "loading" };
      searchMessages();
    }
    schedule();
  });
  store.subscribe("searchIn", (chatId) => searchIn(chatId));
  $("#search-scope-clear").append(icon("close"));
  $("#search-scope-clear").addEventListener("click", () => {
    searchIn(null);
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      input.value = "";
      input.dispatchEvent(new Event("input"));
    } else if (event.key === "Enter") {
      const first = list().querySelector(".chat-item, .person-item, .search-result");
      if (first) first.click();
    } else if (event.key === "ArrowDown") {
      const first = list().querySelector(".chat-item, .person-item, .search-result");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  list().addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const items = [...list().querySelectorAll(".chat-item, .person-item, .search-result, .search-more")];
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
  scope = null;
  renderScope();
  if (input.value) {
    input.value = "";
    input.dispatchEvent(new Event("input"));
  }
}

/** Searches the messages of one chat (null: all chats); on a phone the list comes back to show the box. */
export function searchIn(chatId) {
  scope = chatId;
  renderScope();
  const input = $("#search-input");
  if (chatId && window.matchMedia("(max-width: 760px)").matches) window.location.hash = "#/";
  input.dispatchEvent(new Event("input"));
  input.focus();
  input.select();
}

function renderScope() {
  const chat = scope ? store.state.chats.get(scope) : null;
  $("#search-scope").hidden = !chat;
  $("#search-scope-name").textContent = chat ? store.chatTitle(chat) : "";
  $("#search-input").placeholder = chat ? "Search messages in this chat" : "Search chats, people and messages";
}

async function runMessageSearch({ more = false } = {}) {
  const text = query;
  const chatId = scope;
  if (!WORD.test(text)) return;
  if (foundController) foundController.abort();
  const controller = new AbortController();
  foundController = controller;
  const cursor = more ? found.nextCursor : null;
  if (more) found = { ...found, state: "loading" };
  try {
    const page = await store.searchMessages(text, { chatId, cursor, signal: controller.signal });
    if (controller.signal.aborted || text !== query || chatId !== scope) return;
    const results = more ? [...found.results, ...page.results] : page.results;
    found = { query: text, scope: chatId, results, nextCursor: page.nextCursor || null, state: "done" };
  } catch (error) {
    if (controller.signal.aborted) return;
    found = { ...found, state: "error", error: error instanceof ApiError ? error.message : "Couldn't search." };
    if (!(error instanceof ApiError)) console.warn("message search failed", error);
  }
  schedule();
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
  const needle = scope ? "" : query.toLocaleLowerCase();
  const messagesFound = found.query === query && found.scope === scope && found.results.length > 0;
  const shown = needle
    ? chats.filter((chat) => store.chatTitle(chat).toLocaleLowerCase().includes(needle)
      || chat.members.some((m) => m.name.toLocaleLowerCase().includes(needle)))
    : chats;

  if (!store.state.chatsLoaded && chats.length === 0) {
    nodes.push(store.state.chatsError
      ? h("div.list-note", h("p", "Couldn't load your chats."), h("button.button.small", { type: "button", onclick: () => store.loadChats().catch(() => {}) }, "Try again"))
      : skeleton());
  } else if (scope && query) {
    // Searching one chat: only its messages.
  } else if (chats.length === 0 && !needle) {
    nodes.push(h("div.list-empty",
      h("div.empty-art.small", { "aria-hidden": "true" }),
      h("p.list-empty-title", "No chats yet"),
      h("p.muted", "Search for someone by name above to start a conversation, or create a group.")));
  } else if (!(needle && shown.length === 0 && messagesFound)) {
    if (needle) nodes.push(h("h3.list-heading", "Chats"));
    for (const chat of shown) nodes.push(chatItem(chat));
    if (needle && shown.length === 0) nodes.push(h("p.list-note.muted", "No chats match."));
  }

  // Words that match messages but no chat or person: the empty sections give way to the messages.
  if (needle && !(messagesFound && people.length === 0 && peopleState !== "loading")) {
    nodes.push(h("h3.list-heading", "People"));
    if (peopleState === "loading" && people.length === 0) nodes.push(h("p.list-note.muted", "Searching…"));
    else if (peopleState === "error") nodes.push(h("p.list-note.muted", "Couldn't search right now."));
    else if (people.length === 0) nodes.push(h("p.list-note.muted", `Nobody called “${query}”.`));
    for (const person of people) nodes.push(personItem(person));
  }
  if (query && WORD.test(query)) nodes.push(...messageResults());
  const focused = host.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = focused ? focused.dataset.resultKey || focused.dataset.chatId || focused.dataset.userId : null;
  host.replaceChildren(...stable(nodes));
  if (focusKey) {
    const again = [...host.querySelectorAll(".chat-item, .person-item, .search-result")]
      .find((el) => (el.dataset.resultKey || el.dataset.chatId || el.dataset.userId) === focusKey);
    if (again) again.focus({ preventScroll: true });
  }
  const unread = store.totalUnread();
  document.title = unread > 0 ? `(${formatBadge(unread)}) Parley` : "Parley";
}

let shownItems = new Map(); // key → the item shown for it

/**
 * Keeps the items that look the same as the ones shown (same attributes and content): a result arriving, or any
 * re-render, does not replace the item under the pointer, the one being clicked, or the one with the focus.
 */
function stable(nodes) {
  const next = new Map();
  const kept = nodes.map((node) => {
    const data = node.dataset || {};
    const key = data.resultKey ? `r:${data.resultKey}` : data.userId ? `p:${data.userId}` : data.chatId ? `c:${data.chatId}` : null;
    if (!key) return node;
    const shown = shownItems.get(key);
    const item = shown && shown.isEqualNode(node) ? shown : node;
    next.set(key, item);
    return item;
  });
  shownItems = next;
  return kept;
}

function messageResults() {
  const nodes = [h("h3.list-heading", scope ? "Messages in this chat" : "Messages")];
  const current = found.query === query && found.scope === scope;
  if (found.state === "error") nodes.push(h("p.list-note.muted", found.error || "Couldn't search right now."));
  else if (!current || (found.state === "loading" && found.results.length === 0)) nodes.push(h("p.list-note.muted", "Searching…"));
  else if (found.results.length === 0) {
    nodes.push(h("p.list-note.muted", `No messages with “${query}”.`));
    // Words are matched whole: say how to match the start of one (unless the query already does).
    if (!query.includes("*")) nodes.push(h("p.list-note.muted.search-hint", "Add * to a word to match words starting with it, as in plan*."));
  }
  if (current) {
    for (const result of found.results) {
      const item = resultItem(result);
      if (item) nodes.push(item);
    }
    if (found.nextCursor) {
      nodes.push(h("button.link-button.search-more", {
        type: "button", disabled: found.state === "loading", onclick: () => runMessageSearch({ more: true }),
      }, found.state === "loading" ? "Loading…" : "More results"));
    }
  }
  return nodes;
}

/** A search hit: the chat, who wrote it and when, and the text around the matched words, marked. */
function resultItem({ message, highlights }) {
  const chat = store.state.chats.get(message.chatId);
  if (!chat) return null;
  const other = store.otherMember(chat);
  const title = store.chatTitle(chat);
  const sender = store.memberName(chat, message.senderId);
  const item = h("button.search-result", {
    type: "button", dataset: { chatId: message.chatId, seq: String(message.seq), resultKey: `${message.chatId}:${message.seq}` },
    "aria-label": `${sender} in ${title}: ${message.text || ""}`,
  },
  avatar({ id: chat.kind === "group" ? chat.id : other?.id, name: title, avatarUrl: chat.kind === "group" ? chat.avatarUrl : other?.avatarUrl, group: chat.kind === "group", size: "sm" }),
  h("span.chat-item-body",
    h("span.chat-item-top",
      h("span.chat-item-name", title),
      h("time.chat-item-time", { datetime: message.createdAt }, formatListTime(message.createdAt))),
    h("span.search-result-text", h("bdi.search-result-sender", sender), ": ",
      h("bdi.search-result-snippet", snippet(chat, message, highlights || [])))));
  item.addEventListener("click", () => openChatAt(message.chatId, message.seq));
  return item;
}

const SNIPPET_BEFORE = 40;
const SNIPPET_LENGTH = 320;

/**
 * The text of a hit from a little before its first match, with the matched ranges (UTF-16 offsets into the stored
 * text) in <mark> and mentions as "@Name"; all of it as text nodes.
 */
function snippet(chat, message, highlights) {
  const text = message.text || "";
  const ranges = highlights.filter((r) => Number.isInteger(r.start) && Number.isInteger(r.end) && r.start < r.end && r.end <= text.length)
    .sort((a, b) => a.start - b.start);
  let from = 0;
  if (ranges.length && ranges[0].start > SNIPPET_BEFORE) {
    from = ranges[0].start - SNIPPET_BEFORE;
    const space = text.indexOf(" ", from);
    if (space !== -1 && space < ranges[0].start) from = space + 1;
  }
  const to = Math.min(text.length, Math.max(from + SNIPPET_LENGTH, ranges.length ? ranges[ranges.length - 1].end : 0));
  const named = (piece) => splitMentions(piece, message.mentions || [])
    .map((part) => (typeof part === "string" ? part : `@${store.displayName(chat, part.userId)}`)).join("").replace(/\s+/gu, " ");
  const fragment = document.createDocumentFragment();
  if (from > 0) fragment.append("…");
  let at = from;
  for (const range of ranges) {
    if (range.end <= at) continue;
    const start = Math.max(range.start, at);
    if (start > at) fragment.append(named(text.slice(at, start)));
    fragment.append(h("mark", named(text.slice(start, range.end))));
    at = range.end;
  }
  if (at < to) fragment.append(named(text.slice(at, to)));
  if (to < text.length) fragment.append("…");
  return fragment;
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
  const mentions = active ? 0 : chat.mentionCount || 0;
  const title = store.chatTitle(chat);
  const last = chat.lastMessage;
  const typers = store.typers(chat.id);

  let preview;
  if (typers.length > 0) {
    const who = chat.kind === "group" ? `${store.memberName(chat, typers[0])} is typing…` : "typing…";
    preview = h("span.chat-item-preview.typing", who);
  } else if (last && last.kind === "system") {
    preview = h("span.chat-item-preview", h("span.preview-text", h("bdi.preview-message.system", store.systemSentence(chat, last))));
  } else if (last) {
    const mine = store.state.me && last.senderId === store.state.me.id;
    // The sender's name and the text each in a <bdi>: a bidi override in either cannot reorder what follows it.
    const prefix = mine ? "You: " : chat.kind === "group" ? [h("bdi", store.memberName(chat, last.senderId)), ": "] : "";
    const ticks = mine ? tick(store.messageStatus(chat, last)) : null;
    const text = h(`bdi.preview-message${last.kind === "deleted" ? ".deleted" : ""}`,
      messagePreview(last, (id) => store.displayName(chat, id)));
    preview = h("span.chat-item-preview", last.kind === "deleted" ? null : ticks, h("span.preview-text", prefix, text));
  } else {
    preview = h("span.chat-item-preview.muted", chat.kind === "group" ? "Group created" : "Say hello 👋");
  }
  const when = last ? last.createdAt : chat.updatedAt;
  const item = h(`a.chat-item${active ? ".active" : ""}${unread ? ".unread" : ""}`, {
    href: `#/chat/${encodeURIComponent(chat.id)}`,
    dataset: { chatId: chat.id, unread: String(unread) },
    "aria-current": active ? "page" : null,
    "aria-label": `${title}${unread ? `, ${unread} unread` : ""}${mentions ? `, ${mentions} mentioning you` : ""}`,
  },
  avatar({ id: chat.kind === "group" ? chat.id : other?.id, name: title, avatarUrl: chat.kind === "group" ? chat.avatarUrl : other?.avatarUrl, group: chat.kind === "group", online }),
  h("span.chat-item-body",
    h("span.chat-item-top",
      h("span.chat-item-name", title),
      when ? h("time.chat-item-time", { datetime: when }, formatListTime(when)) : null),
    h("span.chat-item-bottom",
      preview,
      mentions ? h("span.mention-badge", { "aria-hidden": "true", title: `${mentions} mentioning you` }, `@${formatBadge(mentions)}`) : null,
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
