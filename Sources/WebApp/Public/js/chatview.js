// The conversation: header (name, online / last seen / typing), messages grouped by day and sender, ticks,
// images with upload progress, older history on scrolling up, and the composer. Each message has its actions (react,
// reply, and a menu with edit and delete for one's own), a reaction bar, "(edited)", tombstones for deleted ones,
// quoted replies that jump to their original, and mentions shown as the member's current name.

import { h, avatar, icon, richText, toast, hueFor } from "./dom.js";
import { dayKey, formatDay, formatTime, formatFull, formatLastSeen, formatSize, splitMentions, textWithNames } from "./format.js";
import * as store from "./store.js";
import { noteTyping, stopTypingNow, syncOpenChat } from "./realtime.js";
import { closePopover, showMenu, showEmojiPicker } from "./popover.js";
import { openChatDetails } from "./chatdetails.js";
import { MentionCompleter } from "./mentions.js";

const GROUP_GAP_MS = 5 * 60_000;
const BOTTOM_SLACK_PX = 80;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
/** The server's default PARLEY_MAX_FILE_BYTES; a server set lower answers 413, shown on the message. */
const MAX_FILE_BYTES = 25 * 1024 * 1024;
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];

let chatId = null;
let rows = new Map(); // key → {row, sig, parts}
let daySeparators = new Map();
let unreadMarker = null;
let firstUnreadSeq = null;
let stick = true;
let newBelow = 0;
let scheduled = null;
let drafts = new Map();
let attachment = null; // {file, url, width, height}
let wired = false;
let subtitleTimer = null;
let replies = new Map(); // chatId → the message the composer answers
let editing = null; // {key, chatId, seq, completer, input, error}
let flash = null; // {chatId, seq, until}: the message a jump landed on, highlighted for a moment
let pendingJump = null; // {chatId, seq}: open this chat at this message
let composerMentions = null;
let refocus = null; // {key, focus}: a focused control inside a row that is being rebuilt
const FLASH_MS = 2600;

const el = {};

export function initChatView() {
  if (wired) return;
  wired = true;
  for (const id of ["chat-pane", "empty-conversation", "chat-title", "chat-subtitle", "chat-header-avatar", "messages-scroller",
    "messages", "history-status", "jump-button", "jump-count", "typing-line", "composer", "message-input", "send-button",
    "file-input", "attachment", "attachment-preview", "attachment-file-icon", "attachment-name", "attachment-size", "attachment-remove",
    "composer-error", "back-button", "attach-button", "image-dialog", "image-dialog-img", "reply-preview",
    "reply-preview-name", "reply-preview-text", "reply-cancel", "chat-search-button", "delete-dialog", "delete-preview",
    "delete-confirm", "composer-row", "history-after"]) {
    el[id.replace(/-([a-z])/gu, (_, c) => c.toUpperCase())] = document.getElementById(id);
  }
  el.sendButton.append(icon("send"));
  el.attachButton.append(icon("attach"));
  el.backButton.append(icon("back"));
  el.attachmentRemove.append(icon("close"));
  el.jumpButton.prepend(icon("down"));
  el.replyCancel.append(icon("close"));
  el.replyPreview.prepend(icon("reply"));
  el.chatSearchButton.append(icon("search"));
  el.chatSearchButton.addEventListener("click", () => { if (chatId) store.publish("searchIn", chatId); });
  el.replyCancel.addEventListener("click", () => {
    clearReply();
    el.messageInput.focus();
  });
  el.deleteDialog.addEventListener("close", () => {
    const target = el.deleteDialog.returnValue === "delete" ? pendingDelete : null;
    const anchor = pendingDeleteAnchor;
    pendingDelete = null;
    pendingDeleteAnchor = null;
    if (target) {
      store.deleteMessage(target.chatId, target.seq).catch((error) => toast(error.message || "Couldn't delete the message.", { kind: "error" }));
      el.messageInput.focus({ preventScroll: true });
    } else if (anchor && anchor.isConnected) {
      anchor.focus({ preventScroll: true });
    }
  });
  composerMentions = new MentionCompleter(el.messageInput, el.composer, () => mentionable());
  for (const button of document.querySelectorAll(".image-close")) if (!button.firstChild) button.append(icon("close"));

  store.subscribe("messages", (id, info) => { if (id === chatId) schedule(info && info.reason, info); });
  store.subscribe("readState", (id) => { if (id === chatId) schedule("status"); });
  store.subscribe("chats", () => {
    if (!chatId) return;
    renderHeader();
    // Names and pictures of the members come with the chat list: redraw the messages when they changed.
    const key = membersKey(store.state.chats.get(chatId));
    if (key !== shownMembersKey) {
      shownMembersKey = key;
      schedule("update");
    }
  });
  store.subscribe("presence", () => { if (chatId) renderHeader(); });
  store.subscribe("blocks", () => { if (chatId) renderBlockedComposer(); });
  store.subscribe("connection", () => { if (chatId) renderHeader(); });
  store.subscribe("typing", (id) => { if (id === chatId) { renderHeader(); renderTyping(); } });

  el.messagesScroller.addEventListener("scroll", onScroll, { passive: true });
  // A popover stays where it opened: scrolling the messages by hand closes it (a re-render's scroll does not).
  for (const type of ["wheel", "touchmove"]) {
    el.messagesScroller.addEventListener(type, () => closePopover({ restoreFocus: false }), { passive: true });
  }
  new ResizeObserver(() => { if (stick) scrollToBottom(); }).observe(el.messagesScroller);
  new ResizeObserver(() => { if (stick) scrollToBottom(); }).observe(el.messages);
  el.jumpButton.addEventListener("click", () => {
    const entry = chatId ? store.history(chatId) : null;
    if (entry && entry.hasMoreAfter) store.loadLatest(chatId).catch(() => toast("Couldn't load the newest messages.", { kind: "error" }));
    else scrollToBottom(true);
  });
  el.backButton.addEventListener("click", () => { window.location.hash = "#/"; });
  document.getElementById("chat-header-info").addEventListener("click", () => { if (chatId) openChatDetails(chatId); });
  // Removed from the open group, or left it: back to the list.
  store.subscribe("removed", (id) => {
    if (id !== chatId) return;
    window.location.hash = "#/";
    closeChat();
  });

  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  el.messageInput.addEventListener("keydown", (event) => {
    if (event.isComposing || event.keyCode === 229) return;
    if (composerMentions.handleKeydown(event)) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && (attachment || replies.has(chatId))) {
      // Escape takes back the last thing added to the composer (and does not close the chat on a phone).
      event.stopPropagation();
      if (replies.has(chatId)) clearReply();
      else clearAttachment();
    } else if (event.key === "ArrowUp" && !el.messageInput.value && !attachment) {
      // As in Slack: the up arrow in an empty composer edits one's last message.
      const last = [...store.history(chatId).items].reverse().find((m) => isMine(m) && m.kind === "text");
      if (last) {
        event.preventDefault();
        startEdit(last);
      }
    }
  });
  el.messageInput.addEventListener("input", () => {
    autoGrow();
    updateSendButton();
    hideComposerError();
    if (!chatId) return;
    drafts.set(chatId, el.messageInput.value);
    if (el.messageInput.value.trim()) noteTyping(chatId);
    else stopTypingNow();
  });
  el.messageInput.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    const file = files.find((f) => f.type.startsWith("image/")) || files[0];
    if (file) {
      event.preventDefault();
      chooseFile(file);
    }
  });
  el.fileInput.addEventListener("change", () => {
    const file = el.fileInput.files && el.fileInput.files[0];
    el.fileInput.value = "";
    if (file) chooseFile(file);
  });
  el.attachmentRemove.addEventListener("click", () => {
    clearAttachment();
    el.messageInput.focus();
  });
  const pane = el.chatPane;
  pane.addEventListener("dragover", (event) => {
    if ([...(event.dataTransfer?.items || [])].some((item) => item.kind === "file")) {
      event.preventDefault();
      pane.classList.add("dragging");
    }
  });
  pane.addEventListener("dragleave", (event) => {
    if (event.target === pane || !pane.contains(event.relatedTarget)) pane.classList.remove("dragging");
  });
  pane.addEventListener("drop", (event) => {
    pane.classList.remove("dragging");
    const file = [...(event.dataTransfer?.files || [])][0];
    if (file) {
      event.preventDefault();
      chooseFile(file);
    }
  });
  el.imageDialog.addEventListener("click", () => el.imageDialog.close());
  el.imageDialog.addEventListener("close", () => { el.imageDialogImg.removeAttribute("src"); });
  updateSendButton();
}

// ------------------------------------------------------------------------------------------------------------
// Opening and closing

export function openChat(id) {
  if (id === chatId) {
    store.markReadIfVisible(id);
    if (pendingJump && pendingJump.chatId === id) jumpTo(takeJump());
    return;
  }
  if (chatId) {
    stopTypingNow();
    drafts.set(chatId, el.messageInput.value);
  }
  closePopover({ restoreFocus: false });
  cancelEdit();
  composerMentions.reset();
  chatId = id;
  store.state.openChatId = id;
  rows = new Map();
  daySeparators = new Map();
  unreadMarker = null;
  newBelow = 0;
  stick = true;
  clearAttachment();
  hideComposerError();

  const chat = store.state.chats.get(id);
  const mine = chat && store.state.me ? chat.readState.find((r) => r.userId === store.state.me.id) : null;
  firstUnreadSeq = chat && chat.unreadCount > 0 && mine ? mine.lastReadSeq + 1 : null;

  el.emptyConversation.hidden = true;
  el.chatPane.hidden = false;
  el.messages.replaceChildren();
  el.messageInput.value = drafts.get(id) || "";
  autoGrow();
  updateSendButton();
  renderHeader();
  renderBlockedComposer();
  renderTyping();
  renderReply();
  render("initial");
  store.publish("open");
  syncOpenChat();
  clearInterval(subtitleTimer);
  subtitleTimer = setInterval(renderHeader, 30_000);

  if (pendingJump && pendingJump.chatId === id) {
    jumpTo(takeJump());
  } else {
    store.ensureHistory(id).then(() => {
      if (chatId !== id) return;
      store.markReadIfVisible(id);
      maybeLoadOlder();
    }).catch(() => {});
  }
  if (window.matchMedia("(pointer: fine)").matches) el.messageInput.focus({ preventScroll: true });
}

export function closeChat() {
  if (chatId) {
    stopTypingNow();
    drafts.set(chatId, el.messageInput.value);
  }
  closePopover({ restoreFocus: false });
  cancelEdit();
  chatId = null;
  store.state.openChatId = null;
  rows = new Map();
  clearInterval(subtitleTimer);
  el.chatPane.hidden = true;
  el.emptyConversation.hidden = false;
  store.publish("open");
  syncOpenChat();
}

export function currentChatId() {
  return chatId;
}

export function resetChatView() {
  closeChat();
  drafts = new Map();
  replies = new Map();
  pendingJump = null;
}

/** Opens a chat at one message (a search result): loads the history around it, scrolls to it and highlights it. */
export function openChatAt(id, seq) {
  pendingJump = { chatId: id, seq };
  const hash = `#/chat/${encodeURIComponent(id)}`;
  if (window.location.hash === hash) openChat(id);
  else window.location.hash = hash;
}

function takeJump() {
  const { seq } = pendingJump;
  pendingJump = null;
  return seq;
}

/** Scrolls to the message `seq` of the open chat, loading the history around it first when it is not loaded. */
export async function jumpTo(seq) {
  const id = chatId;
  if (!id) return;
  stick = false;
  flash = { chatId: id, seq, until: Date.now() + FLASH_MS };
  let found;
  try {
    found = await store.loadAround(id, seq);
  } catch {
    if (chatId === id) toast("Couldn't load that message.", { kind: "error" });
    return;
  }
  if (chatId !== id) return;
  if (!found) {
    toast("That message is not there any more.");
    return;
  }
  render("jump");
  const target = el.messages.querySelector(`.message-row[data-seq="${seq}"]`);
  if (!target) return;
  target.scrollIntoView({ block: "center" });
  stick = isAtBottom() && !store.history(id).hasMoreAfter;
  updateJumpButton();
  target.classList.remove("flash");
  void target.offsetWidth; // restart the animation when the same message is jumped to again
  target.classList.add("flash");
  setTimeout(() => {
    if (flash && flash.seq === seq && flash.chatId === id && Date.now() >= flash.until) flash = null;
    const row = el.messages.querySelector(`.message-row[data-seq="${seq}"]`);
    if (row && !(flash && flash.seq === seq)) row.classList.remove("flash");
  }, FLASH_MS + 50);
  store.markReadIfVisible(id);
  requestAnimationFrame(() => {
    maybeLoadOlder();
    maybeLoadNewer();
  });
}

// ------------------------------------------------------------------------------------------------------------
// Header and typing

function renderHeader() {
  const chat = store.state.chats.get(chatId);
  if (!chat) {
    el.chatTitle.textContent = "…";
    el.chatSubtitle.textContent = "";
    return;
  }
  const title = store.chatTitle(chat);
  const other = store.otherMember(chat);
  const online = other ? store.state.online.has(other.id) : false;
  el.chatTitle.textContent = title;
  el.chatHeaderAvatar.replaceChildren(avatar({
    id: chat.kind === "group" ? chat.id : other?.id, name: title, avatarUrl: chat.kind === "group" ? chat.avatarUrl : other?.avatarUrl,
    group: chat.kind === "group", online,
  }));
  const typers = store.typers(chat.id);
  let subtitle;
  let typing = false;
  const connection = store.state.connection.state;
  if (connection !== "connected") {
    subtitle = navigator.onLine ? "connecting…" : "waiting for network…";
  } else if (typers.length > 0) {
    typing = true;
    subtitle = chat.kind === "group" ? typingSentence(chat, typers) : "typing…";
  } else if (other) {
    const seen = store.state.lastSeen.get(other.id);
    const presence = store.presenceOf(other.id);
    subtitle = presence === "online" ? "online" : seen ? formatLastSeen(seen) : presence === "offline" ? "offline" : "";
  } else {
    const others = chat.members.filter((m) => !store.state.me || m.id !== store.state.me.id);
    const here = others.filter((m) => store.state.online.has(m.id)).length;
    subtitle = `${chat.members.length} members${here ? ` · ${here} online` : ""}`;
    el.chatSubtitle.title = chat.members.map((m) => (store.state.me && m.id === store.state.me.id ? "You" : m.name)).join(", ");
  }
  el.chatSubtitle.textContent = subtitle;
  el.chatSubtitle.classList.toggle("online", online && !typing);
  el.chatSubtitle.classList.toggle("typing", typing);
}

function typingSentence(chat, typers) {
  const names = typers.map((id) => store.memberName(chat, id));
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

function renderTyping() {
  const chat = store.state.chats.get(chatId);
  const typers = chat ? store.typers(chat.id) : [];
  if (typers.length === 0) {
    el.typingLine.replaceChildren();
    el.typingLine.classList.remove("visible");
    return;
  }
  el.typingLine.replaceChildren(
    h("span.typing-dots", { "aria-hidden": "true" }, h("span"), h("span"), h("span")),
    h("span.typing-text", typingSentence(chat, typers)));
  el.typingLine.classList.add("visible");
}

// ------------------------------------------------------------------------------------------------------------
// Messages

function schedule(reason, info) {
  if (reason === "older" || reason === "initial" || reason === "latest" || reason === "newer") {
    // These need the scroll position measured right before the DOM changes.
    render(reason, info);
    return;
  }
  if (reason === "received" && !stick && info && info.message) newBelow += 1;
  const forceBottom = reason === "queued" || reason === "sent";
  if (scheduled) {
    scheduled.forceBottom ||= forceBottom;
    return;
  }
  scheduled = { forceBottom };
  requestAnimationFrame(() => {
    const { forceBottom: force } = scheduled;
    scheduled = null;
    render(force ? "own" : "update");
  });
}

let shownMembersKey = "";

function membersKey(chat) {
  return chat ? chat.members.map((m) => `${m.id}:${m.name}:${m.avatarUrl || ""}`).join("/") : "";
}

function render(reason) {
  if (!chatId) return;
  const chat = store.state.chats.get(chatId);
  shownMembersKey = membersKey(chat);
  const entry = store.history(chatId);
  const scroller = el.messagesScroller;
  const oldHeight = scroller.scrollHeight;
  const oldTop = scroller.scrollTop;

  renderHistoryStatus(entry, chat);
  renderHistoryAfter(entry);

  const items = entry.items.map((message) => ({ message }));
  for (const pending of store.outboxFor(chatId)) items.push({ pending });
  const nodes = [];
  const me = store.state.me ? store.state.me.id : null;
  let previous = null;
  const facts = items.map((item) => {
    const source = item.message || item.pending;
    const date = new Date(source.createdAt);
    // A system message stands apart from the messages around it: it belongs to no sender's run.
    const sender = item.message ? (item.message.kind === "system" ? "system" : item.message.senderId) : me;
    return { item, sender, date, day: dayKey(date) };
  });
  for (let i = 0; i < facts.length; i += 1) {
    const fact = facts[i];
    let separated = false;
    if (!previous || previous.day !== fact.day) {
      nodes.push(daySeparator(fact.date, fact.day));
      separated = true;
    }
    if (firstUnreadSeq !== null && fact.item.message && fact.item.message.seq === firstUnreadSeq && fact.sender !== me) {
      nodes.push(unreadSeparator());
      separated = true;
    }
    if (fact.sender === "system") {
      nodes.push(systemRow(chat, fact.item.message));
      previous = fact;
      continue;
    }
    const next = facts[i + 1];
    const startsGroup = separated || !previous || previous.sender !== fact.sender || fact.date - previous.date > GROUP_GAP_MS;
    const endsGroup = !next || next.sender !== fact.sender || next.day !== fact.day || next.date - fact.date > GROUP_GAP_MS
      || (firstUnreadSeq !== null && next.item.message && next.item.message.seq === firstUnreadSeq && next.sender !== me);
    nodes.push(row(chat, fact.item, { startsGroup, endsGroup, mine: fact.sender === me }));
    previous = fact;
  }
  reconcile(el.messages, nodes);
  if (refocus) {
    const { key, focus } = refocus;
    refocus = null;
    const again = el.messages.querySelector(`[data-key="${CSS.escape(key)}"] [data-focus="${CSS.escape(focus)}"]`);
    if (again) again.focus({ preventScroll: true });
  }

  // Scrolling: keep the reader where they are unless they are at the bottom (or sent something themselves).
  if (reason === "initial") {
    const marker = unreadMarker && unreadMarker.isConnected ? unreadMarker : null;
    if (marker && entry.loaded) {
      const offset = marker.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop;
      scroller.scrollTop = Math.max(0, offset - 24);
      stick = isAtBottom();
    } else {
      scrollToBottom();
    }
  } else if (reason === "older") {
    scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight);
  } else if (reason === "latest" || ((reason === "own" || stick) && !entry.hasMoreAfter)) {
    scrollToBottom();
  }
  updateJumpButton();
  if (reason === "older" || reason === "initial") requestAnimationFrame(maybeLoadOlder);
  if (reason === "newer") requestAnimationFrame(maybeLoadNewer);
}

function renderHistoryStatus(entry, chat) {
  const status = el.historyStatus;
  let content = null;
  if (!entry.loaded && entry.error) {
    content = [h("span", "Couldn't load messages. "),
      h("button.link-button", { type: "button", onclick: () => store.ensureHistory(chatId).catch(() => {}) }, "Try again")];
  } else if (!entry.loaded || entry.loadingOlder) {
    content = h("span.loading", h("span.spinner", { "aria-hidden": "true" }), entry.loaded ? "Loading earlier messages…" : "Loading messages…");
  } else if (!entry.hasMoreBefore) {
    const title = chat ? store.chatTitle(chat) : "";
    content = entry.items.length === 0 && store.outboxFor(chatId).length === 0
      ? h("span.history-start", h("span.empty-art.small", { "aria-hidden": "true" }),
        chat && chat.kind === "group" ? `This is the start of “${title}”. Say hello!` : `This is the start of your chat with ${title}. Say hello!`)
      : h("span.history-start", "This is the beginning of the chat.");
  }
  status.replaceChildren(...(content ? [content].flat() : []));
}

function renderHistoryAfter(entry) {
  const busy = entry.loaded && entry.hasMoreAfter;
  el.historyAfter.replaceChildren(...(busy
    ? [h("span.loading", h("span.spinner", { "aria-hidden": "true" }), "Loading newer messages…")] : []));
}

function daySeparator(date, key) {
  let node = daySeparators.get(key);
  if (!node) {
    node = h("div.day-separator", { role: "separator" }, h("span", formatDay(date)));
    daySeparators.set(key, node);
  }
  return node;
}

const systemRows = new Map(); // message id -> {node, text}

/** A change to a group, as a centred line of the timeline: "Ann added Ben". */
function systemRow(chat, message) {
  const text = store.systemSentence(chat, message);
  let cached = systemRows.get(message.id);
  if (!cached || cached.text !== text) {
    const node = h("div.system-line", { role: "note", dataset: { key: `m:${message.id}`, seq: String(message.seq) } }, h("span", text));
    cached = { node, text };
    systemRows.set(message.id, cached);
  }
  return cached.node;
}

function unreadSeparator() {
  if (!unreadMarker) unreadMarker = h("div.unread-separator", { role: "separator" }, h("span", "Unread messages"));
  return unreadMarker;
}

function keyOf(item) {
  if (item.pending) return `c:${item.pending.clientMessageId}`;
  const message = item.message;
  const me = store.state.me ? store.state.me.id : null;
  return message.clientMessageId && message.senderId === me ? `c:${message.clientMessageId}` : `m:${message.id}`;
}

/** A message row, reused across renders; only its status, progress and grouping parts change in place. */
function row(chat, item, { startsGroup, endsGroup, mine }) {
  const key = keyOf(item);
  const source = item.message || item.pending;
  const message = item.message;
  const deleted = Boolean(message && message.kind === "deleted");
  const isImage = message ? message.kind === "image" : Boolean(item.pending.file && !item.pending.asFile);
  const isFile = message ? message.kind === "file" : Boolean(item.pending.file && item.pending.asFile);
  const showName = !mine && chat && chat.kind === "group" && startsGroup;
  const showAvatar = !mine && chat && chat.kind === "group";
  // The sender's name and picture are part of the row: a re-read chat list with a new name or photo rebuilds it.
  const sender = (showName || showAvatar) && message ? chat.members.find((m) => m.id === message.senderId) : null;
  const who = sender ? `${sender.name}|${showAvatar && endsGroup ? sender.avatarUrl || "" : ""}` : "";
  // Mentions, quotes and reactions show members' names: a rename rebuilds the rows that have them.
  const names = source.replyTo || (message && ((message.mentions || []).length || (message.reactions || []).length))
    ? shownMembersKey : "";
  const sig = [startsGroup, endsGroup, showName, isImage, isFile, source.text || "", who, message ? message.kind : "pending",
    message ? message.version : "", message ? message.editedAt || "" : "", JSON.stringify(source.replyTo || null),
    JSON.stringify(message ? message.reactions || [] : []), names].join("|");
  let cached = rows.get(key);
  if (editing && editing.key === key && !deleted && cached) {
    // Keep the open editor; what changed underneath shows when it closes.
  } else if (!cached || cached.sig !== sig) {
    if (editing && editing.key === key) cancelEdit({ render: false });
    const previous = cached;
    if (previous && previous.row.contains(document.activeElement) && document.activeElement.dataset.focus) {
      refocus = { key, focus: document.activeElement.dataset.focus };
    }
    cached = buildRow(chat, item, { startsGroup, endsGroup, mine, showName, showAvatar, isImage, isFile, deleted, reuse: previous });
    cached.sig = sig;
    cached.row.dataset.key = key;
    rows.set(key, cached);
  }
  updateRow(chat, cached, item, mine);
  return cached.row;
}

function isMine(message) {
  return Boolean(store.state.me && message && message.senderId === store.state.me.id);
}

/** A member's current name, for mentions, quotes and reactions ("You" only where `you` asks for it). */
function nameOf(chat, userId, { you = false } = {}) {
  const me = store.state.me;
  if (me && userId === me.id) return you ? "You" : me.name;
  const member = chat && chat.members.find((m) => m.id === userId);
  return member ? member.name : "someone";
}

/** Who can be mentioned in the open chat: its members but oneself. */
function mentionable() {
  const chat = chatId ? store.state.chats.get(chatId) : null;
  const me = store.state.me ? store.state.me.id : null;
  return chat ? chat.members.filter((m) => m.id !== me) : [];
}

/** Message text as DOM nodes: links, and mentions as chips with the member's current name (never as HTML). */
function messageText(chat, message) {
  const fragment = document.createDocumentFragment();
  for (const part of splitMentions(message.text, message.mentions || [])) {
    if (typeof part === "string") {
      fragment.append(richText(part));
    } else {
      const me = store.state.me && part.userId === store.state.me.id;
      fragment.append(h(`span.mention${me ? ".mention-me" : ""}`, { dataset: { userId: part.userId } }, `@${nameOf(chat, part.userId)}`));
    }
  }
  return fragment;
}

/** One line quoting a message (a reply's original): its text with names, or what kind of message it is. */
function quoteText(chat, quoted) {
  if (!quoted || quoted.kind === "deleted") return null;
  // A reply's preview has no `mentions`: a `<@id>` of a member of the chat is a mention the server accepted.
  const accepted = chat ? chat.members.map((m) => m.id) : [];
  const text = textWithNames({ text: quoted.text, mentions: accepted }, (id) => nameOf(chat, id)).replace(/\s+/gu, " ").trim();
  if (quoted.kind === "image") return text ? `📷 ${text}` : "📷 Photo";
  if (quoted.kind === "file") return `📎 ${text || (quoted.file && quoted.file.name) || "File"}`;
  return text;
}

function replyQuote(chat, replyTo, { interactive }) {
  const deleted = replyTo.kind === "deleted";
  const sender = h("span.reply-quote-name", deleted ? "" : nameOf(chat, replyTo.senderId, { you: true }));
  sender.style.setProperty("--avatar-hue", String(hueFor(replyTo.senderId)));
  const text = h(`span.reply-quote-text${deleted ? ".deleted" : ""}`, { dir: "auto" }, deleted ? "Original message deleted" : quoteText(chat, replyTo));
  const children = deleted ? [text] : [sender, text];
  if (!interactive) return h("div.reply-quote", children);
  const quote = h("button.reply-quote", {
    type: "button", dataset: { focus: "quote", replySeq: String(replyTo.seq) },
    title: "Show the original message", "aria-label": deleted ? "Original message deleted" : `Reply to ${sender.textContent}: show the original`,
  }, children);
  quote.addEventListener("click", () => jumpTo(replyTo.seq));
  return quote;
}

function buildRow(chat, item, { startsGroup, endsGroup, mine, showName, showAvatar, isImage, isFile, deleted, reuse }) {
  const source = item.message || item.pending;
  const message = item.message;
  const parts = {};
  const classes = ["message-row", mine ? "mine" : "theirs"];
  if (startsGroup) classes.push("group-start");
  if (endsGroup) classes.push("group-end");
  if (deleted) classes.push("deleted");
  if (showAvatar) classes.push("has-avatar");
  if (store.mentionsMe(message)) classes.push("mentions-me");
  const bubble = h(`div.bubble${isImage ? ".has-image" : ""}${isImage && !source.text ? ".image-only" : ""}`);
  if (showName) {
    const member = chat.members.find((m) => m.id === message.senderId);
    const name = h("div.sender-name", member ? member.name : "Someone");
    name.style.setProperty("--avatar-hue", String(hueFor(message.senderId)));
    bubble.append(name);
  }
  if (!deleted && source.replyTo) bubble.append(replyQuote(chat, source.replyTo, { interactive: Boolean(message) }));
  if (deleted) {
    bubble.append(h("span.message-deleted", "Message deleted"));
  } else {
    if (isImage) {
      // Keep the same <img> when a pending image becomes the stored message: no reload, no jump.
      const figure = reuse && reuse.parts.figure ? reuse.parts.figure : imageFigure(item);
      parts.figure = figure;
      parts.progress = figure.querySelector(".upload-progress");
      bubble.append(figure);
    }
    if (isFile) {
      const chip = fileChip(item);
      parts.progress = chip.querySelector(".upload-progress");
      bubble.append(chip);
    }
    if (source.text) {
      // A pending text already has its mentions as `<@id>`: show the members' names, as the stored one will.
      const shown = message || { text: source.text, mentions: chat ? chat.members.map((m) => m.id) : [] };
      parts.text = h("div.message-text", { dir: "auto" }, messageText(chat, shown));
      bubble.append(parts.text);
    }
  }
  parts.time = h("time.message-time");
  parts.status = h("span.message-status");
  const edited = message && message.editedAt && !deleted
    ? h("span.message-edited", { title: `Edited ${formatFull(message.editedAt)}` }, "(edited)") : null;
  bubble.append(h("span.message-meta", edited, parts.time, mine ? parts.status : null));
  parts.bubble = bubble;
  const children = [];
  if (showAvatar) {
    if (endsGroup) {
      const member = chat.members.find((m) => m.id === message.senderId) || { id: message.senderId, name: "?" };
      children.push(avatar({ id: member.id, name: member.name, avatarUrl: member.avatarUrl, size: "sm" }));
    } else {
      children.push(h("span.avatar-spacer"));
    }
  }
  children.push(bubble);
  if (message && !deleted) {
    children.push(messageActions(chat, message));
    // Without a mouse to hover with, a tap on the message shows its actions.
    bubble.addEventListener("click", (event) => {
      if (!window.matchMedia("(hover: none)").matches || event.target.closest("a, button, textarea")) return;
      const row = bubble.closest(".message-row");
      const open = row.classList.contains("actions-open");
      for (const other of el.messages.querySelectorAll(".message-row.actions-open")) other.classList.remove("actions-open");
      row.classList.toggle("actions-open", !open);
    });
  }
  parts.failed = h("div.message-failed", { hidden: true });
  const reactions = message && !deleted && (message.reactions || []).length ? reactionBar(chat, message) : null;
  const rowElement = h("div", { class: classes.join(" ") }, h("div.message-line", children), reactions, parts.failed);
  return { row: rowElement, parts };
}

// ------------------------------------------------------------------------------------------------------------
// Acting on a message: the toolbar beside it (react, reply, more), the menu, reactions, editing and deleting

function messageActions(chat, message) {
  const label = `${isMine(message) ? "your" : `${nameOf(chat, message.senderId)}’s`} message`;
  const reactButton = h("button.action-button.action-react", {
    type: "button", title: "Add a reaction", "aria-label": `Add a reaction to ${label}`, "aria-haspopup": "dialog",
    dataset: { focus: "react" },
  }, icon("smile"));
  reactButton.addEventListener("click", () => pickReaction(message, reactButton));
  const replyButton = h("button.action-button.action-reply", {
    type: "button", title: "Reply", "aria-label": `Reply to ${label}`, dataset: { focus: "reply" },
  }, icon("reply"));
  replyButton.addEventListener("click", () => startReply(message));
  const moreButton = h("button.action-button.action-more", {
    type: "button", title: "More actions", "aria-label": `More actions for ${label}`, "aria-haspopup": "menu",
    "aria-expanded": "false", dataset: { focus: "more" },
  }, icon("more"));
  moreButton.addEventListener("click", () => openMenu(chat, message, moreButton));
  return h("div.message-actions", { role: "group", "aria-label": `Actions for ${label}` }, reactButton, replyButton, moreButton);
}

function openMenu(chat, message, anchor) {
  const items = [
    { id: "reply", label: "Reply", icon: "reply", action: () => startReply(message) },
    { id: "react", label: "Add a reaction", icon: "smile", action: () => pickReaction(message, anchor) },
  ];
  if (isMine(message) && message.kind === "text") items.push({ id: "edit", label: "Edit", icon: "edit", action: () => startEdit(message) });
  if (isMine(message)) items.push({ id: "delete", label: "Delete", icon: "trash", danger: true, action: () => confirmDelete(message, anchor) });
  showMenu(anchor, items, "Message actions");
}

function reactedWith(message) {
  const me = store.state.me ? store.state.me.id : null;
  return (message.reactions || []).filter((r) => r.userIds.includes(me)).map((r) => r.emoji);
}

function pickReaction(message, anchor) {
  const mine = reactedWith(message);
  showEmojiPicker(anchor.isConnected ? anchor : el.messageInput, (emoji) => toggleReaction(message, emoji, !mine.includes(emoji)), mine);
}

function toggleReaction(message, emoji, on) {
  store.react(message.chatId, message.seq, emoji, on).catch((error) => {
    toast(error.code === "too_many_reactions" ? "That message has as many reactions as it can take." : error.message || "Couldn't react.",
      { kind: "error" });
  });
}

function reactionBar(chat, message) {
  const me = store.state.me ? store.state.me.id : null;
  const buttons = message.reactions.map((reaction) => {
    const mine = reaction.userIds.includes(me);
    const names = reaction.userIds.map((id) => nameOf(chat, id, { you: true }));
    const who = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : names[0] || "";
    const button = h(`button.reaction${mine ? ".mine" : ""}`, {
      type: "button", title: `${who} reacted with ${reaction.emoji}`, "aria-pressed": mine ? "true" : "false",
      "aria-label": `${reaction.emoji} ${reaction.userIds.length}: ${who}`, dataset: { focus: `reaction:${reaction.emoji}`, emoji: reaction.emoji },
    }, h("span.reaction-emoji", reaction.emoji), h("span.reaction-count", String(reaction.userIds.length)));
    button.addEventListener("click", () => toggleReaction(message, reaction.emoji, !mine));
    return button;
  });
  const add = h("button.reaction.reaction-add", {
    type: "button", title: "Add a reaction", "aria-label": "Add a reaction", "aria-haspopup": "dialog", dataset: { focus: "reaction-add" },
  }, icon("smile"));
  add.addEventListener("click", () => pickReaction(message, add));
  return h("div.reactions", { role: "group", "aria-label": "Reactions" }, buttons, add);
}

// Deleting: a confirmation dialog first.
let pendingDelete = null;
let pendingDeleteAnchor = null;

function confirmDelete(message, anchor) {
  pendingDelete = { chatId: message.chatId, seq: message.seq };
  pendingDeleteAnchor = anchor;
  const chat = store.state.chats.get(message.chatId);
  const preview = message.kind === "image" ? quoteText(chat, message) : textWithNames(message, (id) => nameOf(chat, id));
  el.deletePreview.textContent = preview;
  el.deletePreview.hidden = !preview;
  el.deleteDialog.returnValue = "";
  el.deleteDialog.showModal();
  el.deleteConfirm.focus();
}

// Replying: the message shows above the composer until it is sent or cancelled.
function startReply(message) {
  if (!chatId || message.chatId !== chatId) return;
  replies.set(chatId, message);
  renderReply();
  el.messageInput.focus({ preventScroll: true });
  if (stick) scrollToBottom();
}

function clearReply() {
  if (!chatId) return;
  replies.delete(chatId);
  renderReply();
}

function renderReply() {
  const message = chatId ? replies.get(chatId) : null;
  el.replyPreview.hidden = !message;
  if (!message) {
    el.replyPreviewName.textContent = "";
    el.replyPreviewText.textContent = "";
    return;
  }
  const chat = store.state.chats.get(chatId);
  el.replyPreviewName.textContent = nameOf(chat, message.senderId, { you: true });
  el.replyPreviewName.style.setProperty("--avatar-hue", String(hueFor(message.senderId)));
  el.replyPreviewText.textContent = quoteText(chat, store.replyPreviewOf(message));
}

// Editing in place: Enter saves, Shift+Enter is a new line, Escape cancels.
function startEdit(message) {
  if (!isMine(message) || message.kind !== "text") return;
  const key = keyOf({ message });
  const cached = rows.get(key);
  if (!cached) return;
  cancelEdit();
  const chat = store.state.chats.get(message.chatId);
  const input = h("textarea.edit-input", { rows: "1", maxlength: "4000", "aria-label": "Edit message", enterkeyhint: "done" });
  const error = h("p.edit-error", { role: "alert", hidden: true });
  const cancel = h("button.link-button", { type: "button" }, "Cancel");
  const save = h("button.button.small.primary", { type: "button" }, "Save");
  const editor = h("div.message-editor", input,
    h("div.edit-footer", h("span.edit-hint", "Enter to save · Esc to cancel"), h("span.spacer"), cancel, save), error);
  const completer = new MentionCompleter(input, editor, () => mentionable(), { below: true });
  input.value = completer.decode(message, (id) => {
    const member = chat && chat.members.find((m) => m.id === id);
    return member ? member.name : (store.state.me && id === store.state.me.id ? store.state.me.name : null);
  });
  editing = { key, chatId: message.chatId, seq: message.seq, original: input.value, completer, input, error, editor };
  const bubble = cached.parts.bubble;
  bubble.classList.add("editing");
  cached.row.classList.add("is-editing");
  if (cached.parts.text) cached.parts.text.replaceWith(editor);
  else bubble.prepend(editor);
  const grow = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  };
  input.addEventListener("input", () => {
    grow();
    error.hidden = true;
  });
  input.addEventListener("keydown", (event) => {
    if (event.isComposing || event.keyCode === 229) return;
    if (completer.handleKeydown(event)) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      saveEdit();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancelEdit();
      el.messageInput.focus({ preventScroll: true });
    }
  });
  cancel.addEventListener("click", () => {
    cancelEdit();
    el.messageInput.focus({ preventScroll: true });
  });
  save.addEventListener("click", saveEdit);
  grow();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  cached.row.scrollIntoView({ block: "nearest" });
}

async function saveEdit() {
  if (!editing || editing.saving) return;
  const current = editing;
  const text = current.input.value.replace(/^\s+|\s+$/gu, "");
  const fail = (message) => {
    current.error.textContent = message;
    current.error.hidden = false;
  };
  if (!text) {
    fail("A message can't be empty. To remove it, delete it.");
    return;
  }
  if (text.length > 4000) {
    fail("A message can be at most 4000 characters.");
    return;
  }
  if (text === current.original.trim()) {
    cancelEdit();
    el.messageInput.focus({ preventScroll: true });
    return;
  }
  current.saving = true;
  current.input.disabled = true;
  try {
    await store.editMessage(current.chatId, current.seq, current.completer.encode(text));
    if (editing === current) {
      cancelEdit();
      el.messageInput.focus({ preventScroll: true });
    }
  } catch (error) {
    current.saving = false;
    current.input.disabled = false;
    if (editing !== current) return;
    fail(error.code === "message_deleted" ? "This message was deleted." : error.message || "Couldn't save the change.");
    current.input.focus();
  }
}

/** Closes the editor without saving; the row is rebuilt from the message as it is now. */
function cancelEdit({ render: rerender = true } = {}) {
  if (!editing) return;
  const { key, completer } = editing;
  editing = null;
  completer.close();
  const cached = rows.get(key);
  if (cached) cached.sig = null;
  if (rerender) schedule("update");
}

function imageFigure(item) {
  const message = item.message;
  const pending = item.pending;
  const image = message ? message.image : null;
  // The timeline shows the server's small preview; the full image opens on click.
  const src = pending ? pending.previewUrl : message.localPreviewUrl || (image && (image.thumbnailUrl || image.url));
  const width = (image && image.width) || (pending && pending.width) || null;
  const height = (image && image.height) || (pending && pending.height) || null;
  const img = h("img.message-image", { alt: "Photo", decoding: "async" });
  if (width && height) {
    // Reserve the final size before the picture loads, so nothing below it jumps.
    const size = displaySize(width, height);
    img.style.width = `${size.width}px`;
    img.style.aspectRatio = `${width} / ${height}`;
  } else {
    img.classList.add("unsized");
  }
  if (src && /^(\/|blob:|https?:)/u.test(src)) img.src = src;
  img.addEventListener("error", () => {
    img.classList.add("broken");
    img.alt = "The image could not be loaded";
  });
  const button = h("button.image-button", { type: "button", "aria-label": "Open the photo" }, img);
  button.addEventListener("click", () => {
    if (!img.currentSrc && !img.src) return;
    const full = item.message && item.message.image ? item.message.image.url : img.src;
    el.imageDialogImg.src = /^(\/|blob:|https?:)/u.test(full) ? full : img.src;
    el.imageDialog.showModal();
  });
  const progress = h("div.upload-progress", { hidden: true }, h("div.upload-bar"));
  progress.setAttribute("role", "progressbar");
  progress.setAttribute("aria-label", "Upload progress");
  progress.setAttribute("aria-valuemin", "0");
  progress.setAttribute("aria-valuemax", "100");
  return h("div.image-figure", button, progress);
}

/** A file's type as a person names it, from its content type and, failing that, its name's extension. */
function fileKind(contentType, name) {
  const type = (contentType || "").split(";")[0].trim();
  const extension = (name || "").includes(".") ? name.split(".").pop().toLowerCase() : "";
  if (type === "application/pdf") return { label: "PDF", glyph: "📕" };
  if (type.startsWith("image/")) return { label: "Image", glyph: "🖼️" };
  if (type.startsWith("audio/")) return { label: "Audio", glyph: "🎵" };
  if (type.startsWith("video/")) return { label: "Video", glyph: "🎬" };
  if (["application/zip", "application/gzip", "application/x-7z-compressed", "application/vnd.rar", "application/x-xz",
    "application/x-bzip2"].includes(type)) {
    if (["docx", "xlsx", "pptx", "odt", "ods", "odp"].includes(extension)) return { label: "Document", glyph: "📄" };
    return { label: "Archive", glyph: "🗜️" };
  }
  if (type.startsWith("text/")) return { label: "Text", glyph: "📄" };
  return { label: extension && extension.length <= 5 ? extension.toUpperCase() : "File", glyph: "📎" };
}

/** A file message's chip: type icon, name, size and type, and a download link (the server sends it as an attachment). */
function fileChip(item) {
  const message = item.message;
  const pending = item.pending;
  const file = message ? message.file || {} : { name: pending.file.name || "file", size: pending.file.size, contentType: pending.file.type };
  const kind = fileKind(file.contentType, file.name);
  const name = h("span.file-name", { dir: "auto", title: file.name }, file.name || "file");
  const meta = h("span.file-meta.muted", `${formatSize(file.size || 0)} · ${kind.label}`);
  const glyph = h("span.file-icon", { "aria-hidden": "true" }, kind.glyph);
  const info = h("span.file-info", name, meta);
  const progress = h("div.upload-progress", { hidden: true }, h("div.upload-bar"));
  progress.setAttribute("role", "progressbar");
  progress.setAttribute("aria-label", "Upload progress");
  progress.setAttribute("aria-valuemin", "0");
  progress.setAttribute("aria-valuemax", "100");
  if (message && file.url && /^(\/|https?:)/u.test(file.url)) {
    const link = h("a.file-chip", { href: file.url, download: file.name || "", rel: "noopener", title: `Download ${file.name}` },
      glyph, info, h("span.file-download", { "aria-hidden": "true" }, "⬇"));
    link.setAttribute("aria-label", `Download ${file.name}, ${formatSize(file.size || 0)}, ${kind.label}`);
    return h("div.file-figure", link, progress);
  }
  return h("div.file-figure", h("div.file-chip", glyph, info), progress);
}

const IMAGE_MAX_WIDTH = 320;
const IMAGE_MAX_HEIGHT = 360;
const IMAGE_MIN_WIDTH = 120;

/** The on-screen size of a picture: fits 320×360, small pictures shown at least 120 px wide. */
function displaySize(width, height) {
  let scale = Math.min(1, IMAGE_MAX_WIDTH / width, IMAGE_MAX_HEIGHT / height);
  if (width * scale < IMAGE_MIN_WIDTH) scale = Math.min(IMAGE_MIN_WIDTH / width, IMAGE_MAX_HEIGHT / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

function updateRow(chat, cached, item, mine) {
  const { row: rowElement, parts } = cached;
  const message = item.message;
  const pending = item.pending;
  const source = message || pending;
  const status = pending ? pending.status : mine ? store.messageStatus(chat, message) : "received";
  rowElement.dataset.status = status;
  rowElement.dataset.sender = mine ? "me" : "other";
  if (message) {
    rowElement.dataset.seq = String(message.seq);
    rowElement.dataset.id = message.id;
    const flashing = flash && flash.chatId === message.chatId && flash.seq === message.seq && Date.now() < flash.until;
    if (flashing !== rowElement.classList.contains("flash")) rowElement.classList.toggle("flash", flashing);
  }
  if (source.clientMessageId) rowElement.dataset.clientMessageId = source.clientMessageId;
  rowElement.classList.toggle("pending", Boolean(pending));
  rowElement.classList.toggle("failed", status === "failed");

  const when = source.createdAt;
  if (parts.time.dateTime !== when) {
    parts.time.dateTime = when;
    parts.time.textContent = formatTime(when);
    parts.time.title = formatFull(when);
  }

  if (mine && parts.status.dataset.state !== status) {
    parts.status.dataset.state = status;
    const icons = {
      queued: ["clock", "Waiting to send"],
      sending: ["clock", "Sending"],
      failed: ["error", "Not sent"],
      sent: ["check", "Sent"],
      seen: ["checks", chat && chat.kind === "group" ? "Seen by everyone" : "Seen"],
    };
    const [name, label] = icons[status] || icons.sent;
    parts.status.replaceChildren(icon(name, label));
    parts.status.title = label;
  }
  if (mine && message && chat && chat.kind === "group" && status === "sent") {
    const count = store.seenCount(chat, message);
    parts.status.title = count > 0 ? `Seen by ${count} of ${chat.members.length - 1}` : "Sent";
  }

  if (parts.progress) {
    const uploading = pending && pending.file && (pending.status === "sending" || pending.status === "queued");
    parts.progress.hidden = !uploading;
    if (uploading) {
      const percent = Math.round((pending.progress || 0) * 100);
      parts.progress.firstChild.style.width = `${Math.max(percent, pending.status === "sending" ? 3 : 0)}%`;
      parts.progress.setAttribute("aria-valuenow", String(percent));
      parts.progress.classList.toggle("waiting", pending.status === "queued");
    }
  }

  const failed = pending && pending.status === "failed";
  if (failed) {
    parts.failed.hidden = false;
    parts.failed.replaceChildren(
      h("span", pending.error || "Not sent."),
      h("button.link-button", { type: "button", onclick: () => store.retry(pending.clientMessageId) }, "Retry"),
      h("button.link-button", { type: "button", onclick: () => store.discard(pending.clientMessageId) }, "Delete"));
  } else if (!parts.failed.hidden) {
    parts.failed.hidden = true;
    parts.failed.replaceChildren();
  }
}

/** Makes `parent`'s children exactly `nodes`, moving only what is out of place. */
function reconcile(parent, nodes) {
  let current = parent.firstChild;
  for (const node of nodes) {
    if (node === current) {
      current = current.nextSibling;
      continue;
    }
    parent.insertBefore(node, current);
  }
  while (current) {
    const next = current.nextSibling;
    current.remove();
    current = next;
  }
}

// ------------------------------------------------------------------------------------------------------------
// Scrolling

function isAtBottom() {
  const scroller = el.messagesScroller;
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < BOTTOM_SLACK_PX;
}

function scrollToBottom(smooth = false) {
  const scroller = el.messagesScroller;
  if (smooth) scroller.scrollTo({ top: scroller.scrollHeight, behavior: "smooth" });
  else scroller.scrollTop = scroller.scrollHeight;
  stick = true;
  newBelow = 0;
  updateJumpButton();
}

function onScroll() {
  const entry = chatId ? store.history(chatId) : null;
  stick = isAtBottom() && !(entry && entry.hasMoreAfter);
  if (stick) newBelow = 0;
  updateJumpButton();
  maybeLoadOlder();
  maybeLoadNewer();
}

function maybeLoadNewer() {
  if (!chatId) return;
  const entry = store.history(chatId);
  if (!entry.loaded || !entry.hasMoreAfter || entry.loadingNewer) return;
  const scroller = el.messagesScroller;
  if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 300) {
    store.loadNewer(chatId).catch(() => toast("Couldn't load newer messages.", { kind: "error" }));
  }
}

function maybeLoadOlder() {
  if (!chatId) return;
  const entry = store.history(chatId);
  if (!entry.loaded || !entry.hasMoreBefore || entry.loadingOlder) return;
  if (el.messagesScroller.scrollTop < 300) store.loadOlder(chatId).catch(() => toast("Couldn't load earlier messages.", { kind: "error" }));
}

function updateJumpButton() {
  el.jumpButton.hidden = stick;
  el.jumpCount.hidden = newBelow === 0;
  el.jumpCount.textContent = newBelow > 99 ? "99+" : String(newBelow);
}

// ------------------------------------------------------------------------------------------------------------
// Composer

function autoGrow() {
  const input = el.messageInput;
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

/** A direct chat with someone one blocks takes nothing new: the composer says so instead of failing each send. */
function renderBlockedComposer() {
  const chat = store.state.chats.get(chatId);
  const other = store.otherMember(chat);
  const blocked = Boolean(other && store.state.blocked && store.state.blocked.has(other.id));
  el.messageInput.disabled = blocked;
  el.messageInput.placeholder = blocked ? `You block ${other.name}. Unblock them (tap their name above) to write.` : "Write a message";
  el.composer.classList.toggle("blocked", blocked);
  if (blocked) el.sendButton.disabled = true;
  else updateSendButton();
}

function updateSendButton() {
  el.sendButton.disabled = !attachment && !el.messageInput.value.trim();
}

function showComposerError(message) {
  el.composerError.textContent = message;
  el.composerError.hidden = false;
}

function hideComposerError() {
  el.composerError.hidden = true;
}

function submit() {
  if (!chatId) return;
  const text = el.messageInput.value.replace(/^\s+|\s+$/gu, "");
  if (!text && !attachment) return;
  if (composerMentions.encode(text).length > 4000) {
    showComposerError("A message can be at most 4000 characters.");
    return;
  }
  stopTypingNow();
  const entry = store.history(chatId);
  // Sending from a jump into the past goes back to the newest messages, where it will show.
  if (entry.hasMoreAfter) store.loadLatest(chatId).catch(() => {});
  const encoded = text ? composerMentions.encode(text) : text;
  const replyTo = replies.get(chatId) || null;
  if (attachment && attachment.asFile) {
    store.send(chatId, encoded, attachment.file, null, replyTo, { asFile: true });
    clearAttachment();
  } else if (attachment) {
    store.send(chatId, encoded, attachment.file, { width: attachment.width, height: attachment.height }, replyTo);
    clearAttachment();
  } else {
    store.send(chatId, encoded, null, null, replyTo);
  }
  clearReply();
  composerMentions.reset();
  el.messageInput.value = "";
  drafts.delete(chatId);
  autoGrow();
  updateSendButton();
  el.messageInput.focus({ preventScroll: true });
}

async function chooseFile(file) {
  hideComposerError();
  // JPEG, PNG, GIF and WebP within the image limit go as images (shown in place); anything else as a file (a chip).
  const dimensions = IMAGE_TYPES.includes(file.type) && file.size <= MAX_IMAGE_BYTES ? await imageDimensions(file) : null;
  if (!dimensions) {
    if (file.size > MAX_FILE_BYTES) {
      showComposerError(`That file is ${formatSize(file.size)}; the limit is ${formatSize(MAX_FILE_BYTES)}.`);
      return;
    }
    clearAttachment();
    attachment = { file, url: null, asFile: true };
    el.attachmentPreview.hidden = true;
    el.attachmentFileIcon.textContent = fileKind(file.type, file.name).glyph;
    el.attachmentFileIcon.hidden = false;
    el.attachmentName.textContent = file.name || "file";
    el.attachmentSize.textContent = `${formatSize(file.size)} · ${fileKind(file.type, file.name).label}`;
    el.attachment.hidden = false;
    el.messageInput.placeholder = "Add a caption (optional)";
    updateSendButton();
    el.messageInput.focus({ preventScroll: true });
    if (stick) scrollToBottom();
    return;
  }
  clearAttachment();
  const url = URL.createObjectURL(file);
  attachment = { file, url, ...dimensions };
  el.attachmentPreview.hidden = false;
  el.attachmentFileIcon.hidden = true;
  el.attachmentPreview.src = url;
  el.attachmentName.textContent = file.name || "Pasted image";
  el.attachmentSize.textContent = `${formatSize(file.size)} · ${dimensions.width}×${dimensions.height}`;
  el.attachment.hidden = false;
  el.messageInput.placeholder = "Add a caption (optional)";
  updateSendButton();
  el.messageInput.focus({ preventScroll: true });
  if (stick) scrollToBottom();
}

/** The width and height of an image file, or null when the browser cannot read it as one. */
function imageDimensions(file) {
  const url = URL.createObjectURL(file);
  return new Promise((resolve) => {
    const probe = new Image();
    probe.onload = () => resolve({ width: probe.naturalWidth, height: probe.naturalHeight });
    probe.onerror = () => resolve(null);
    probe.src = url;
  }).finally(() => URL.revokeObjectURL(url));
}

function clearAttachment() {
  if (attachment && attachment.url) URL.revokeObjectURL(attachment.url);
  attachment = null;
  el.attachment.hidden = true;
  el.attachmentPreview.removeAttribute("src");
  el.messageInput.placeholder = "Write a message";
  updateSendButton();
}
