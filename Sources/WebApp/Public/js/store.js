// The app's state and every change to it. Views subscribe to topics and re-render what changed:
//   "chats"          the chat list (order, previews, unread counts)
//   "messages"       (chatId) the messages or outbox of one chat
//   "readState"      (chatId) someone's read pointer moved (ticks)
//   "presence"       who is online
//   "typing"         (chatId) who is typing
//   "connection"     the realtime connection's state
//   "me"             the signed-in user changed
//   "open"           the open chat changed

import { api, uploadMessage, ApiError } from "./api.js";
import { uuid } from "./dom.js";

const PAGE = 50;
const TYPING_TTL_MS = 6000;

export const state = {
  me: null,
  chats: new Map(),
  chatsLoaded: false,
  chatsError: null,
  histories: new Map(),
  outbox: [],
  online: new Set(),
  presenceKnown: new Set(),
  lastSeen: new Map(),
  typing: new Map(),
  openChatId: null,
  connection: { state: "connecting", detail: {} },
};

const subscribers = new Map();

export function subscribe(topic, handler) {
  if (!subscribers.has(topic)) subscribers.set(topic, new Set());
  subscribers.get(topic).add(handler);
  return () => subscribers.get(topic).delete(handler);
}

export function publish(topic, ...args) {
  for (const handler of [...(subscribers.get(topic) || [])]) {
    try {
      handler(...args);
    } catch (error) {
      console.error(`subscriber of ${topic} failed`, error);
    }
  }
}

// The realtime transport, set by realtime.js: {connected, request(event, data, timeout), emit(event, data)}.
let transport = { connected: false, request: () => Promise.reject(new Error("offline")), emit: () => false };

export function setTransport(value) {
  transport = value;
}

// ------------------------------------------------------------------------------------------------------------
// Session lifecycle

export function reset(me) {
  for (const entry of state.outbox) if (entry.previewUrl) URL.revokeObjectURL(entry.previewUrl);
  for (const typers of state.typing.values()) for (const timer of typers.values()) clearTimeout(timer);
  state.me = me;
  state.chats = new Map();
  state.chatsLoaded = false;
  state.chatsError = null;
  state.histories = new Map();
  state.outbox = me ? loadOutbox(me.id) : [];
  state.online = new Set();
  state.presenceKnown = new Set();
  state.lastSeen = new Map();
  state.typing = new Map();
  state.openChatId = null;
}

export function setMe(user) {
  state.me = user;
  for (const chat of state.chats.values()) {
    const member = chat.members.find((m) => m.id === user.id);
    if (member) Object.assign(member, { name: user.name, avatarUrl: user.avatarUrl });
  }
  publish("me");
  publish("chats");
}

// ------------------------------------------------------------------------------------------------------------
// Chats

export function chatTitle(chat) {
  if (!chat) return "";
  if (chat.kind === "group") return chat.name || "Group";
  const other = otherMember(chat);
  return other ? other.name : "Chat";
}

export function otherMember(chat) {
  if (!chat || chat.kind !== "direct") return null;
  return chat.members.find((m) => state.me && m.id !== state.me.id) || null;
}

export function memberName(chat, userId) {
  if (state.me && userId === state.me.id) return "You";
  const member = chat && chat.members.find((m) => m.id === userId);
  return member ? member.name : "Someone";
}

/** The time a chat sorts by: its newest message, else when it changed. */
export function chatActivity(chat) {
  return Date.parse((chat.lastMessage && chat.lastMessage.createdAt) || chat.updatedAt) || 0;
}

export function sortedChats() {
  return [...state.chats.values()].sort((a, b) => chatActivity(b) - chatActivity(a) || (a.id < b.id ? 1 : -1));
}

/** Merges a ChatSummary from the server, keeping the newest lastMessage either side knows. */
export function mergeChat(summary) {
  const known = state.chats.get(summary.id);
  const chat = { ...summary, readState: [...(summary.readState || [])], members: [...(summary.members || [])] };
  if (known) {
    if (known.lastMessage && (!chat.lastMessage || known.lastMessage.seq > chat.lastMessage.seq)) {
      chat.lastMessage = known.lastMessage;
    }
    for (const mine of known.readState || []) {
      const theirs = chat.readState.find((r) => r.userId === mine.userId);
      if (theirs && mine.lastReadSeq > theirs.lastReadSeq) theirs.lastReadSeq = mine.lastReadSeq;
    }
  }
  if (state.openChatId === chat.id && document.visibilityState === "visible") chat.unreadCount = 0;
  state.chats.set(chat.id, chat);
  return chat;
}

export async function loadChats() {
  const all = [];
  let cursor = null;
  try {
    do {
      const query = new URLSearchParams({ limit: "200" });
      if (cursor) query.set("cursor", cursor);
      const page = await api("GET", `/chats?${query}`);
      all.push(...page.chats);
      cursor = page.nextCursor || null;
    } while (cursor);
  } catch (error) {
    state.chatsError = error;
    publish("chats");
    throw error;
  }
  for (const summary of all) mergeChat(summary);
  state.chatsLoaded = true;
  state.chatsError = null;
  publish("chats");
  return all;
}

async function fetchChat(chatId) {
  const summary = await api("GET", `/chats/${encodeURIComponent(chatId)}`);
  mergeChat(summary);
  publish("chats");
  return state.chats.get(chatId);
}

export async function openDirectChat(userId) {
  const { chat } = await api("POST", "/chats", { body: { userId } });
  mergeChat(chat);
  publish("chats");
  return chat.id;
}

export async function createGroup(name, memberIds) {
  const { chat } = await api("POST", "/chats", { body: { name, memberIds } });
  mergeChat(chat);
  publish("chats");
  return chat.id;
}

export async function searchPeople(query, signal) {
  const params = new URLSearchParams({ query, limit: "20" });
  const page = await api("GET", `/users?${params}`, { signal });
  return page.users.filter((user) => !state.me || user.id !== state.me.id);
}

/** The direct chat with a user, if there is one. */
export function directChatWith(userId) {
  for (const chat of state.chats.values()) {
    if (chat.kind === "direct" && chat.members.some((m) => m.id === userId)) return chat;
  }
  return null;
}

export function totalUnread() {
  let total = 0;
  for (const chat of state.chats.values()) total += chat.unreadCount || 0;
  return total;
}

// ------------------------------------------------------------------------------------------------------------
// Messages

export function history(chatId) {
  let entry = state.histories.get(chatId);
  if (!entry) {
    entry = { items: [], ids: new Set(), loaded: false, loading: null, hasMoreBefore: true, loadingOlder: null, error: null };
    state.histories.set(chatId, entry);
  }
  return entry;
}

/** Inserts messages (any order, duplicates ignored); returns how many were new. */
function insertMessages(chatId, messages) {
  const entry = history(chatId);
  let added = 0;
  for (const message of messages) {
    if (entry.ids.has(message.id)) continue;
    if (entry.items.some((m) => m.seq === message.seq)) continue;
    entry.ids.add(message.id);
    added += 1;
    const items = entry.items;
    if (items.length === 0 || items[items.length - 1].seq < message.seq) {
      items.push(message);
    } else {
      let low = 0;
      let high = items.length;
      while (low < high) {
        const mid = (low + high) >> 1;
        if (items[mid].seq < message.seq) low = mid + 1;
        else high = mid;
      }
      items.splice(low, 0, message);
    }
  }
  return added;
}

/** The highest seq up to which the loaded history has no gap (what `after=` asks from). */
export function contiguousSeq(chatId) {
  const entry = state.histories.get(chatId);
  if (!entry || entry.items.length === 0) return 0;
  const items = entry.items;
  let end = items[0].seq;
  for (let i = 1; i < items.length; i += 1) {
    if (items[i].seq !== end + 1) break;
    end = items[i].seq;
  }
  return end;
}

export function lastLoadedSeq(chatId) {
  const entry = state.histories.get(chatId);
  return entry && entry.items.length ? entry.items[entry.items.length - 1].seq : 0;
}

/** Loads the latest page of a chat once. */
export function ensureHistory(chatId) {
  const entry = history(chatId);
  if (entry.loaded) return Promise.resolve(entry);
  if (entry.loading) return entry.loading;
  entry.error = null;
  entry.loading = api("GET", `/chats/${encodeURIComponent(chatId)}/messages?limit=${PAGE}`)
    .then((page) => {
      insertMessages(chatId, page.messages);
      entry.hasMoreBefore = page.hasMore && page.messages.length > 0 && page.messages[0].seq > 1;
      entry.loaded = true;
      for (const message of page.messages) settleOutbox(message);
      updateLastMessage(chatId, page.messages[page.messages.length - 1]);
      const known = state.chats.get(chatId);
      if (known) noteSenders(known, page.messages);
      publish("messages", chatId, { reason: "initial" });
      // Something may have arrived between the page and now (or the realtime link was down).
      const chat = state.chats.get(chatId);
      if (chat && chat.lastMessage && chat.lastMessage.seq > contiguousSeq(chatId)) catchUp(chatId);
      return entry;
    })
    .catch((error) => {
      entry.error = error;
      publish("messages", chatId, { reason: "error" });
      throw error;
    })
    .finally(() => {
      entry.loading = null;
    });
  publish("messages", chatId, { reason: "loading" });
  return entry.loading;
}

/** Loads the page before the oldest loaded message. */
export function loadOlder(chatId) {
  const entry = history(chatId);
  if (!entry.loaded || !entry.hasMoreBefore || entry.loadingOlder) return entry.loadingOlder || Promise.resolve(0);
  const first = entry.items[0];
  if (!first) return Promise.resolve(0);
  entry.loadingOlder = api("GET", `/chats/${encodeURIComponent(chatId)}/messages?before=${first.seq}&limit=${PAGE}`)
    .then((page) => {
      const added = insertMessages(chatId, page.messages);
      entry.hasMoreBefore = page.hasMore && page.messages.length > 0 && page.messages[0].seq > 1;
      publish("messages", chatId, { reason: "older", added });
      return added;
    })
    .finally(() => {
      entry.loadingOlder = null;
    });
  publish("messages", chatId, { reason: "loading-older" });
  return entry.loadingOlder;
}

const catchingUp = new Map();

/** Fetches everything after the contiguous end of the loaded history (after a reconnect or a seq gap). */
export function catchUp(chatId) {
  if (catchingUp.has(chatId)) return catchingUp.get(chatId);
  const entry = history(chatId);
  if (!entry.loaded) return Promise.resolve();
  const run = (async () => {
    for (let round = 0; round < 50; round += 1) {
      const after = contiguousSeq(chatId);
      const page = await api("GET", `/chats/${encodeURIComponent(chatId)}/messages?after=${after}&limit=200`);
      const added = insertMessages(chatId, page.messages);
      for (const message of page.messages) settleOutbox(message);
      if (page.messages.length) updateLastMessage(chatId, page.messages[page.messages.length - 1]);
      const chat = state.chats.get(chatId);
      if (chat && noteSenders(chat, page.messages)) publish("readState", chatId);
      if (added) publish("messages", chatId, { reason: "catch-up", added });
      if (!page.hasMore || page.messages.length === 0) break;
    }
    publish("chats");
    markReadIfVisible(chatId);
  })().finally(() => catchingUp.delete(chatId));
  catchingUp.set(chatId, run);
  return run;
}

function updateLastMessage(chatId, message) {
  const chat = state.chats.get(chatId);
  if (!chat || !message) return;
  if (!chat.lastMessage || chat.lastMessage.seq < message.seq) {
    chat.lastMessage = message;
    publish("chats");
  }
}

/** A message that arrived live (newMessage) or as the answer of a send. */
export function receiveMessage(message, { live = true } = {}) {
  const chatId = message.chatId;
  const chat = state.chats.get(chatId);
  const mine = state.me && message.senderId === state.me.id;
  settleOutbox(message);
  stopTyping(chatId, message.senderId);

  const entry = state.histories.get(chatId);
  let added = 0;
  if (entry && entry.loaded) {
    const before = contiguousSeq(chatId);
    added = insertMessages(chatId, [message]);
    if (added) publish("messages", chatId, { reason: mine ? "sent" : "received", message });
    if (message.seq > before + 1) catchUp(chatId).catch(() => {});
  }

  if (!chat) {
    fetchChat(chatId).catch(() => {});
    return;
  }
  const isNewer = !chat.lastMessage || chat.lastMessage.seq < message.seq;
  if (isNewer) {
    chat.lastMessage = message;
    chat.updatedAt = message.createdAt;
    if (!mine && live && !isVisiblyOpen(chatId)) chat.unreadCount = (chat.unreadCount || 0) + 1;
  }
  if (noteSenders(chat, [message])) publish("readState", chatId);
  publish("chats");
  // A live message into a chat the server knows is open here is marked read by the server as it delivers it.
  if (!mine && !(live && transport.marksReadOnArrival && transport.marksReadOnArrival(chatId))) markReadIfVisible(chatId);
}

export function isVisiblyOpen(chatId) {
  return state.openChatId === chatId && document.visibilityState === "visible";
}

/** Sending moves the sender's read pointer on the server (without a messagesSeen): whoever wrote seq N has read N. */
function noteSenders(chat, messages) {
  let moved = false;
  for (const message of messages) {
    if (chat.members.some((m) => m.id === message.senderId)) moved = raiseReadState(chat, message.senderId, message.seq) || moved;
  }
  return moved;
}

function raiseReadState(chat, userId, seq) {
  let entry = chat.readState.find((r) => r.userId === userId);
  if (!entry) {
    entry = { userId, lastReadSeq: 0 };
    chat.readState.push(entry);
  }
  if (seq > entry.lastReadSeq) {
    entry.lastReadSeq = seq;
    return true;
  }
  return false;
}

/** A member's read pointer moved (messagesSeen). */
export function receiveSeen({ chatId, userId, seq }) {
  const chat = state.chats.get(chatId);
  if (!chat) return;
  const moved = raiseReadState(chat, userId, seq);
  if (state.me && userId === state.me.id) {
    const entry = state.histories.get(chatId);
    if (chat.lastMessage && chat.lastMessage.seq <= seq) {
      chat.unreadCount = 0;
    } else if (entry && entry.loaded && chat.lastMessage && contiguousSeq(chatId) >= chat.lastMessage.seq) {
      chat.unreadCount = entry.items.filter((m) => m.seq > seq && m.senderId !== state.me.id).length;
    } else if (chat.lastMessage) {
      chat.unreadCount = Math.min(chat.unreadCount || 0, chat.lastMessage.seq - seq);
    }
    publish("chats");
  }
  if (moved) publish("readState", chatId);
}

/** "sent" | "seen": seen once every other member has read up to the message. */
export function messageStatus(chat, message) {
  if (!chat || !state.me) return "sent";
  const others = chat.members.filter((m) => m.id !== state.me.id);
  if (others.length === 0) return "sent";
  const seenByAll = others.every((member) => {
    const read = chat.readState.find((r) => r.userId === member.id);
    return read && read.lastReadSeq >= message.seq;
  });
  return seenByAll ? "seen" : "sent";
}

/** How many of the other members have read a message (for the tooltip in groups). */
export function seenCount(chat, message) {
  if (!chat || !state.me) return 0;
  return chat.readState.filter((r) => r.userId !== state.me.id && r.lastReadSeq >= message.seq).length;
}

// ------------------------------------------------------------------------------------------------------------
// Reading

const readTimers = new Map();

export function markReadIfVisible(chatId) {
  if (!isVisiblyOpen(chatId)) return;
  clearTimeout(readTimers.get(chatId));
  readTimers.set(chatId, setTimeout(() => {
    readTimers.delete(chatId);
    markRead(chatId);
  }, 150));
}

function markRead(chatId) {
  const chat = state.chats.get(chatId);
  if (!chat || !state.me || !isVisiblyOpen(chatId)) return;
  const seq = Math.max(lastLoadedSeq(chatId), 0);
  if (seq <= 0) return;
  const mine = chat.readState.find((r) => r.userId === state.me.id);
  const hadUnread = (chat.unreadCount || 0) > 0;
  chat.unreadCount = chat.lastMessage && chat.lastMessage.seq > seq ? chat.unreadCount : 0;
  if (hadUnread) publish("chats");
  if (mine && mine.lastReadSeq >= seq) return;
  raiseReadState(chat, state.me.id, seq);
  const payload = { chatId, seq };
  if (transport.connected) {
    transport.request("markRead", payload, 10000).catch(() => {
      api("POST", `/chats/${encodeURIComponent(chatId)}/read`, { body: { seq } }).catch(() => {});
    });
  } else {
    api("POST", `/chats/${encodeURIComponent(chatId)}/read`, { body: { seq } }).catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------------------
// Typing

export function startTyping(chatId, userId) {
  if (state.me && userId === state.me.id) return;
  // Someone typing has a live connection: covers contacts made after getOnlineUser was sent.
  if (!state.online.has(userId)) {
    state.online.add(userId);
    publish("presence");
  }
  let typers = state.typing.get(chatId);
  if (!typers) {
    typers = new Map();
    state.typing.set(chatId, typers);
  }
  clearTimeout(typers.get(userId));
  typers.set(userId, setTimeout(() => stopTyping(chatId, userId), TYPING_TTL_MS));
  publish("typing", chatId);
}

export function stopTyping(chatId, userId) {
  const typers = state.typing.get(chatId);
  if (!typers || !typers.has(userId)) return;
  clearTimeout(typers.get(userId));
  typers.delete(userId);
  publish("typing", chatId);
}

export function typers(chatId) {
  const typing = state.typing.get(chatId);
  return typing ? [...typing.keys()] : [];
}

// ------------------------------------------------------------------------------------------------------------
// Presence

export function setOnline(ids) {
  for (const id of state.online) if (!ids.includes(id)) state.lastSeen.set(id, new Date());
  state.online = new Set(ids);
  for (const id of ids) state.presenceKnown.add(id);
  publish("presence");
}

/**
 * The server tells a socket about the presence of the people it shared a chat with when it connected, and of
 * contacts' later changes. Members of chats that existed then are "known" (offline unless listed online).
 */
export function notePresenceKnown(chats) {
  for (const chat of chats) for (const member of chat.members) state.presenceKnown.add(member.id);
  publish("presence");
}

/** "online" | "offline" | "unknown" (someone met in a chat created after this connection began). */
export function presenceOf(userId) {
  if (state.online.has(userId)) return "online";
  return state.presenceKnown.has(userId) || state.lastSeen.has(userId) ? "offline" : "unknown";
}

export function clearPresence() {
  state.online = new Set();
  state.presenceKnown = new Set();
  for (const typers of state.typing.values()) for (const timer of typers.values()) clearTimeout(timer);
  const chats = [...state.typing.keys()];
  state.typing = new Map();
  for (const chatId of chats) publish("typing", chatId);
  publish("presence");
}

export function userOnline(userId) {
  state.online.add(userId);
  state.presenceKnown.add(userId);
  publish("presence");
}

export function userOffline(userId) {
  state.online.delete(userId);
  state.presenceKnown.add(userId);
  state.lastSeen.set(userId, new Date());
  for (const chatId of state.typing.keys()) stopTyping(chatId, userId);
  publish("presence");
}

// ------------------------------------------------------------------------------------------------------------
// Sending: every message goes through the outbox. Text goes over the socket (with an ack) when connected and
// waits otherwise; images go over HTTP with upload progress. The clientMessageId stays the same on every retry,
// so the server never stores a message twice.

const OUTBOX_KEY = (userId) => `parley.outbox.${userId}`;
const SEND_TIMEOUT_MS = 15000;
let outboxRunning = false;
let outboxTimer = null;

function loadOutbox(userId) {
  try {
    const saved = JSON.parse(localStorage.getItem(OUTBOX_KEY(userId)) || "[]");
    return Array.isArray(saved)
      ? saved.filter((e) => e && e.clientMessageId && e.chatId && typeof e.text === "string")
        .map((e) => ({ ...e, status: e.status === "failed" ? "failed" : "queued", progress: 0 }))
      : [];
  } catch {
    return [];
  }
}

function saveOutbox() {
  if (!state.me) return;
  const texts = state.outbox.filter((e) => !e.file).map(({ clientMessageId, chatId, text, createdAt, status, error }) =>
    ({ clientMessageId, chatId, text, createdAt, status, error }));
  try {
    if (texts.length) localStorage.setItem(OUTBOX_KEY(state.me.id), JSON.stringify(texts));
    else localStorage.removeItem(OUTBOX_KEY(state.me.id));
  } catch { /* storage full or unavailable */ }
}

export function outboxFor(chatId) {
  return state.outbox.filter((entry) => entry.chatId === chatId);
}

/** Queues a message; `file` is an image File (then `text` is an optional caption). */
export function send(chatId, text, file = null, dimensions = null) {
  const entry = {
    clientMessageId: uuid(),
    chatId,
    text,
    file,
    previewUrl: file ? URL.createObjectURL(file) : null,
    width: dimensions ? dimensions.width : null,
    height: dimensions ? dimensions.height : null,
    createdAt: new Date().toISOString(),
    status: "queued",
    progress: 0,
    error: null,
  };
  state.outbox.push(entry);
  saveOutbox();
  publish("messages", chatId, { reason: "queued", entry });
  processOutbox();
  return entry;
}

export function retry(clientMessageId) {
  const entry = state.outbox.find((e) => e.clientMessageId === clientMessageId);
  if (!entry) return;
  entry.status = "queued";
  entry.error = null;
  saveOutbox();
  publish("messages", entry.chatId, { reason: "retry" });
  processOutbox();
}

export function discard(clientMessageId) {
  const index = state.outbox.findIndex((e) => e.clientMessageId === clientMessageId);
  if (index === -1) return;
  const [entry] = state.outbox.splice(index, 1);
  if (entry.previewUrl) URL.revokeObjectURL(entry.previewUrl);
  saveOutbox();
  publish("messages", entry.chatId, { reason: "discarded" });
}

/** Drops the outbox entry a stored message answers (matched by clientMessageId, for my own messages). */
function settleOutbox(message) {
  if (!message.clientMessageId || !state.me || message.senderId !== state.me.id) return;
  const index = state.outbox.findIndex((e) => e.clientMessageId === message.clientMessageId && e.chatId === message.chatId);
  if (index === -1) return;
  const [entry] = state.outbox.splice(index, 1);
  entry.status = "sent";
  // Keep the local preview until the stored image has loaded (no flash); the view revokes it.
  message.localPreviewUrl = entry.previewUrl || undefined;
  saveOutbox();
  publish("messages", message.chatId, { reason: "settled" });
}

export function processOutbox() {
  if (outboxRunning) return;
  outboxRunning = true;
  clearTimeout(outboxTimer);
  (async () => {
    try {
      for (;;) {
        const entry = state.outbox.find((e) => e.status === "queued");
        if (!entry) break;
        const sent = await sendOne(entry);
        if (!sent) break;
      }
    } finally {
      outboxRunning = false;
    }
  })();
}

/** Tries one entry; false when it has to wait for the connection (the loop stops to keep the order). */
async function sendOne(entry) {
  entry.status = "sending";
  entry.progress = 0;
  publish("messages", entry.chatId, { reason: "sending" });
  try {
    let message;
    if (entry.file) {
      const body = await uploadMessage(entry.chatId, entry, (fraction) => {
        entry.progress = fraction;
        publish("messages", entry.chatId, { reason: "progress", entry });
      });
      message = body.message;
    } else if (transport.connected) {
      const answer = await transport.request("sendMessage", {
        chatId: entry.chatId, text: entry.text, clientMessageId: entry.clientMessageId,
      }, SEND_TIMEOUT_MS);
      if (!answer || answer.error || !answer.message) {
        const error = (answer && answer.error) || { code: "send_failed", message: "The message could not be sent." };
        throw new ApiError(400, error.code, error.message);
      }
      message = answer.message;
    } else {
      entry.status = "queued";
      publish("messages", entry.chatId, { reason: "waiting" });
      return false;
    }
    receiveMessage(message, { live: false });
    return true;
  } catch (error) {
    if (!state.outbox.includes(entry)) return true; // settled meanwhile by newMessage
    const retryable = !(error instanceof ApiError) || error.isNetwork || error.status >= 500 || error.status === 429;
    if (retryable) {
      entry.status = "queued";
      publish("messages", entry.chatId, { reason: "waiting" });
      const wait = error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : 5000;
      clearTimeout(outboxTimer);
      outboxTimer = setTimeout(processOutbox, wait);
      return false;
    }
    entry.status = "failed";
    entry.error = error.message || "The message could not be sent.";
    saveOutbox();
    publish("messages", entry.chatId, { reason: "failed" });
    return true;
  }
}
