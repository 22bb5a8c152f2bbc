// The app's state and every change to it. Views subscribe to topics and re-render what changed:
//   "chats"          the chat list (order, previews, unread counts)
//   "messages"       (chatId) the messages or outbox of one chat
//   "readState"      (chatId) someone's read pointer moved (ticks)
//   "presence"       who is online
//   "typing"         (chatId) who is typing
//   "connection"     the realtime connection's state
//   "me"             the signed-in user changed
//   "open"           the open chat changed
//
// Each loaded history keeps the chat's change `version` it has applied: live events (newMessage, messageUpdated) move
// it on one at a time, and a jump past it (something was missed) or a reconnect fetches `/changes?after=<version>`.

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
  // Everyone seen in a chat, by id: system messages name people who may have left since.
  people: new Map(),
  // The people the signed-in user blocks (GET /blocks), by id; null until loaded.
  blocked: null,
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
  state.people = new Map();
  state.blocked = null;
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

/** A member's name as others see it (oneself included), for mentions. */
export function displayName(chat, userId) {
  if (state.me && userId === state.me.id) return state.me.name;
  const member = chat && chat.members.find((m) => m.id === userId);
  return member ? member.name : "someone";
}

/** The time a chat sorts by: its newest message, else when it changed. */
export function chatActivity(chat) {
  return Date.parse((chat.lastMessage && chat.lastMessage.createdAt) || chat.updatedAt) || 0;
}

export function sortedChats() {
  return [...state.chats.values()].sort((a, b) => chatActivity(b) - chatActivity(a) || (a.id < b.id ? 1 : -1));
}

/** Whether message `a` is a later state than `b` (a higher seq, or the same seq at a higher version). */
function isLater(a, b) {
  if (!b) return Boolean(a);
  if (!a) return false;
  return a.seq > b.seq || (a.seq === b.seq && (a.version || 0) > (b.version || 0));
}

/** Merges a ChatSummary from the server, keeping the newest lastMessage either side knows. */
export function mergeChat(summary, { keepCounts = false } = {}) {
  const known = state.chats.get(summary.id);
  const chat = { ...summary, readState: [...(summary.readState || [])], members: [...(summary.members || [])] };
  for (const member of chat.members) state.people.set(member.id, member);
  // Someone else's view of a chat new here (one was added to it): the own view is fetched.
  if (!known && keepCounts) setTimeout(() => fetchChat(summary.id).catch(() => {}), 0);
  if (known && keepCounts) {
    // A chatUpdated's counts are its actor's: this member's own stay as they were.
    chat.unreadCount = known.unreadCount;
    chat.mentionCount = known.mentionCount;
  }
  if (known) {
    if (isLater(known.lastMessage, chat.lastMessage)) chat.lastMessage = known.lastMessage;
    if ((known.version || 0) > (chat.version || 0)) chat.version = known.version;
    for (const mine of known.readState || []) {
      const theirs = chat.readState.find((r) => r.userId === mine.userId);
      if (theirs && mine.lastReadSeq > theirs.lastReadSeq) theirs.lastReadSeq = mine.lastReadSeq;
    }
  }
  if (state.openChatId === chat.id && document.visibilityState === "visible") {
    chat.unreadCount = 0;
    chat.mentionCount = 0;
  }
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

/** Forgets a chat one is no longer in (removed, or left): it leaves the list, and its history goes. */
export function forgetChat(chatId) {
  if (!state.chats.has(chatId)) return;
  state.chats.delete(chatId);
  state.histories.delete(chatId);
  state.typing.delete(chatId);
  publish("chats");
  publish("removed", chatId);
}

/** The changes owners and admins make to a group; each answers the group as it now is. */
export async function updateGroup(chatId, changes) {
  const chat = await api("PATCH", `/chats/${encodeURIComponent(chatId)}`, { body: changes });
  mergeChat(chat, { keepCounts: true });
  publish("chats");
  return chat;
}

export async function addMembers(chatId, userIds) {
  const chat = await api("POST", `/chats/${encodeURIComponent(chatId)}/members`, { body: { userIds } });
  mergeChat(chat, { keepCounts: true });
  publish("chats");
  return chat;
}

export async function setRole(chatId, userId, role) {
  const chat = await api("PUT", `/chats/${encodeURIComponent(chatId)}/members/${encodeURIComponent(userId)}/role`, { body: { role } });
  mergeChat(chat, { keepCounts: true });
  publish("chats");
  return chat;
}

/** Removes a member, or, for oneself, leaves the group (the chat is then forgotten here). */
export async function removeMember(chatId, userId) {
  await api("DELETE", `/chats/${encodeURIComponent(chatId)}/members/${encodeURIComponent(userId)}`);
  if (state.me && userId === state.me.id) forgetChat(chatId);
}

/** The signed-in user's role in a chat. */
export function myRole(chat) {
  const member = chat && state.me && chat.members.find((m) => m.id === state.me.id);
  return member ? member.role || "member" : null;
}

export async function loadBlocks() {
  const { users } = await api("GET", "/blocks");
  state.blocked = new Map(users.map((user) => [user.id, user]));
  publish("blocks");
  return state.blocked;
}

export async function setBlocked(user, blocked) {
  await api(blocked ? "PUT" : "DELETE", `/blocks/${encodeURIComponent(user.id)}`);
  if (!state.blocked) state.blocked = new Map();
  if (blocked) state.blocked.set(user.id, user);
  else state.blocked.delete(user.id);
  publish("blocks");
}

/** A person's name for system messages: "You", a member's name, or the name they had when last seen here. */
function personName(chat, userId, { capital }) {
  if (state.me && userId === state.me.id) return capital ? "You" : "you";
  const member = (chat && chat.members.find((m) => m.id === userId)) || state.people.get(userId);
  return member ? member.name : "someone";
}

function listNames(names) {
  if (names.length <= 1) return names[0] || "someone";
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/** What a system message says, as a sentence: "Ann added Ben", "Cat renamed the group to “Launch”". */
export function systemSentence(chat, message) {
  const system = message.system || {};
  const actor = personName(chat, system.actorId, { capital: true });
  const people = listNames((system.userIds || []).map((id) => personName(chat, id, { capital: false })));
  switch (system.action) {
    case "added": return `${actor} added ${people}`;
    case "removed": return `${actor} removed ${people}`;
    case "left": return `${actor} left`;
    case "renamed": return `${actor} renamed the group to “${system.name || ""}”`;
    case "photo": return `${actor} changed the group photo`;
    case "role":
      if ((system.userIds || [])[0] === system.actorId) return `${actor} ${actor === "You" ? "are" : "is"} no longer an admin`;
      return system.role === "admin" ? `${actor} made ${people} an admin` : `${actor} made ${people} a member`;
    case "owner": return `${actor} made ${people} the owner`;
    default: return `${actor} changed the group`;
  }
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

/** Whether a message mentions the signed-in user (and was written by someone else). */
export function mentionsMe(message) {
  return Boolean(state.me && message && message.senderId !== state.me.id && Array.isArray(message.mentions)
    && message.mentions.includes(state.me.id));
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
    entry = {
      items: [], ids: new Set(), loaded: false, loading: null, hasMoreBefore: true, hasMoreAfter: false,
      loadingOlder: null, loadingNewer: null, error: null, version: 0, missed: false,
    };
    state.histories.set(chatId, entry);
  }
  return entry;
}

/** Inserts a page of history (any order, duplicates ignored); returns how many were new. */
function insertMessages(chatId, messages) {
  return applyMessages(chatId, messages, { page: true }).added;
}

function indexOfSeq(items, seq) {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (items[mid].seq < seq) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Applies messages in their latest state: a known seq is replaced when the new state is not older, an unknown one is
 * inserted in seq order. Outside a page load, a message beyond the loaded window (older messages not loaded yet, or
 * newer ones after a jump into the past) is left for the page that brings that part. Returns {added, changed}.
 */
function applyMessages(chatId, messages, { page = false } = {}) {
  const entry = history(chatId);
  const items = entry.items;
  let added = 0;
  let changed = 0;
  for (const message of messages) {
    const index = indexOfSeq(items, message.seq);
    const known = items[index];
    if (known && known.seq === message.seq) {
      if (typeof known.version === "number" && typeof message.version === "number" && known.version >= message.version) continue;
      if (known.localPreviewUrl && !message.localPreviewUrl && message.kind === "image") message.localPreviewUrl = known.localPreviewUrl;
      items[index] = message;
      entry.ids.delete(known.id);
      entry.ids.add(message.id);
      changed += 1 + patchReplies(entry, message);
      continue;
    }
    if (entry.ids.has(message.id)) continue;
    if (!page && items.length > 0 && ((message.seq > items[items.length - 1].seq && entry.hasMoreAfter)
        || (message.seq < items[0].seq && entry.hasMoreBefore))) {
      changed += patchReplies(entry, message);
      continue;
    }
    items.splice(index, 0, message);
    entry.ids.add(message.id);
    added += 1;
  }
  return { added, changed };
}

/** The quoted preview a reply shows of `original` (as the server gives it: text cut to 200 characters). */
export function replyPreviewOf(original) {
  if (!original) return null;
  const preview = { seq: original.seq, senderId: original.senderId, kind: original.kind };
  if (original.kind !== "deleted" && original.text) preview.text = Array.from(original.text).slice(0, 200).join("");
  return preview;
}

/** Replies keep the state of their original when read: patch the loaded ones when the original changed. */
function patchReplies(entry, original) {
  const preview = replyPreviewOf(original);
  let patched = 0;
  entry.items.forEach((item, index) => {
    if (!item.replyTo || item.replyTo.seq !== original.seq) return;
    if (item.replyTo.kind === preview.kind && (item.replyTo.text || "") === (preview.text || "")) return;
    entry.items[index] = { ...item, replyTo: { ...preview, senderId: item.replyTo.senderId || preview.senderId } };
    patched += 1;
  });
  return patched;
}

export function messageBySeq(chatId, seq) {
  const entry = state.histories.get(chatId);
  if (!entry) return null;
  const item = entry.items[indexOfSeq(entry.items, seq)];
  return item && item.seq === seq ? item : null;
}

function maxVersion(messages) {
  return messages.reduce((max, message) => Math.max(max, message.version || 0), 0);
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
      if (entry.loaded) return entry; // a jump loaded another part meanwhile
      settleLoadedPage(chatId, entry, page, { hasMoreAfter: false });
      publish("messages", chatId, { reason: "initial" });
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

/** Makes a fetched page the loaded window of a chat (the latest page, or one around a seq). */
function settleLoadedPage(chatId, entry, page, { hasMoreAfter }) {
  const wasLoaded = entry.loaded;
  entry.items = [];
  entry.ids = new Set();
  insertMessages(chatId, page.messages);
  entry.hasMoreBefore = page.hasMore && page.messages.length > 0 && page.messages[0].seq > 1;
  entry.hasMoreAfter = hasMoreAfter;
  // A page shows every change up to at least its newest message's version; asking /changes from there may bring
  // changes again (applied twice, harmlessly) but misses none.
  if (!wasLoaded) entry.version = maxVersion(page.messages);
  entry.loaded = true;
  entry.error = null;
  for (const message of page.messages) settleOutbox(message);
  if (!hasMoreAfter) updateLastMessage(chatId, page.messages[page.messages.length - 1]);
  const chat = state.chats.get(chatId);
  if (chat) noteSenders(chat, page.messages);
  // Something may have changed between the page and now (or the realtime link was down).
  if (chat && (chat.version || 0) > entry.version) catchUp(chatId).catch(() => {});
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

/** After a jump into the past: loads the page after the newest loaded message. */
export function loadNewer(chatId) {
  const entry = history(chatId);
  if (!entry.loaded || !entry.hasMoreAfter || entry.loadingNewer) return entry.loadingNewer || Promise.resolve(0);
  const last = entry.items[entry.items.length - 1];
  if (!last) return Promise.resolve(0);
  entry.loadingNewer = api("GET", `/chats/${encodeURIComponent(chatId)}/messages?after=${last.seq}&limit=${PAGE}`)
    .then((page) => {
      const added = insertMessages(chatId, page.messages);
      entry.hasMoreAfter = page.hasMore && page.messages.length > 0;
      for (const message of page.messages) settleOutbox(message);
      if (!entry.hasMoreAfter) updateLastMessage(chatId, page.messages[page.messages.length - 1]);
      publish("messages", chatId, { reason: "newer", added });
      return added;
    })
    .finally(() => {
      entry.loadingNewer = null;
    });
  publish("messages", chatId, { reason: "loading-newer" });
  return entry.loadingNewer;
}

/**
 * Makes sure the message `seq` is loaded: when it is not, the loaded window becomes a page around it
 * (`?around=seq`), with the newer pages loaded on scrolling down. Resolves with whether the message exists.
 */
export async function loadAround(chatId, seq) {
  const entry = history(chatId);
  if (entry.loading) await entry.loading.catch(() => {});
  if (entry.loaded && messageBySeq(chatId, seq)) return true;
  entry.jumping = true;
  publish("messages", chatId, { reason: "loading" });
  try {
    const page = await api("GET", `/chats/${encodeURIComponent(chatId)}/messages?around=${seq}&limit=${PAGE}`);
    settleLoadedPage(chatId, entry, page, { hasMoreAfter: Boolean(page.hasMoreAfter) });
  } catch (error) {
    if (!entry.loaded) entry.error = error;
    publish("messages", chatId, { reason: "error" });
    throw error;
  } finally {
    entry.jumping = false;
  }
  publish("messages", chatId, { reason: "jump", seq });
  return Boolean(messageBySeq(chatId, seq));
}

/** Back from the past to the newest messages: the loaded window becomes the latest page again. */
export async function loadLatest(chatId) {
  const entry = history(chatId);
  if (!entry.loaded || !entry.hasMoreAfter) return;
  const page = await api("GET", `/chats/${encodeURIComponent(chatId)}/messages?limit=${PAGE}`);
  settleLoadedPage(chatId, entry, page, { hasMoreAfter: false });
  publish("messages", chatId, { reason: "latest" });
}

const catchingUp = new Map();
const CHANGES_PAGE = 100;
const CHANGES_ROUNDS = 30;

/**
 * Brings a loaded chat up to date with `GET /changes?after=<version>` (after a reconnect, or a version gap): new
 * messages are inserted, known ones replaced by their latest state (edited, deleted, reacted to).
 */
export function catchUp(chatId) {
  const entry = history(chatId);
  if (!entry.loaded) return Promise.resolve();
  if (catchingUp.has(chatId)) {
    entry.missed = true; // the running catch-up goes round once more
    return catchingUp.get(chatId);
  }
  const run = (async () => {
    let complete = false;
    for (let round = 0; round < CHANGES_ROUNDS; round += 1) {
      entry.missed = false;
      const after = entry.version;
      const page = await api("GET", `/chats/${encodeURIComponent(chatId)}/changes?after=${after}&limit=${CHANGES_PAGE}`);
      if (state.histories.get(chatId) !== entry) return; // signed out meanwhile
      applyChanges(chatId, page.messages);
      entry.version = Math.max(entry.version, Number(page.version) || 0);
      if (!page.hasMore && !entry.missed) {
        complete = true;
        break;
      }
    }
    if (!complete) {
      // Too far behind to replay: start again from the latest page.
      const page = await api("GET", `/chats/${encodeURIComponent(chatId)}/messages?limit=${PAGE}`);
      const chat = state.chats.get(chatId);
      if (chat) entry.version = Math.max(entry.version, chat.version || 0);
      settleLoadedPage(chatId, entry, page, { hasMoreAfter: false });
      publish("messages", chatId, { reason: "latest" });
    }
    publish("chats");
    markReadIfVisible(chatId);
  })().finally(() => catchingUp.delete(chatId));
  catchingUp.set(chatId, run);
  return run;
}

/** Applies messages in their latest state that were not seen live (a catch-up page, or the answer to an action). */
function applyChanges(chatId, messages) {
  if (messages.length === 0) return;
  const { added, changed } = applyMessages(chatId, messages);
  for (const message of messages) settleOutbox(message);
  const chat = state.chats.get(chatId);
  for (const message of messages) updateLastMessage(chatId, message);
  if (chat && noteSenders(chat, messages.filter((m) => m.kind !== "deleted"))) publish("readState", chatId);
  if (added || changed) publish("messages", chatId, { reason: "catch-up", added });
}

/**
 * Follows the chat's version with a live event: the next one moves it on; one further ahead means events were missed
 * (the server's delivery lost them, or this tab was asleep) and /changes fills them in.
 */
function followVersion(chatId, message) {
  const chat = state.chats.get(chatId);
  if (chat && typeof message.version === "number" && message.version > (chat.version || 0)) chat.version = message.version;
  const entry = state.histories.get(chatId);
  if (!entry || !entry.loaded || typeof message.version !== "number" || message.version <= entry.version) return;
  if (message.version === entry.version + 1 && !catchingUp.has(chatId)) {
    entry.version = message.version;
  } else {
    catchUp(chatId).catch(() => {});
  }
}

/** A message was edited, deleted or reacted to (messageUpdated). */
export function receiveUpdate(message) {
  const chatId = message.chatId;
  const entry = state.histories.get(chatId);
  if (entry && entry.loaded) {
    const { added, changed } = applyMessages(chatId, [message]);
    if (added || changed) publish("messages", chatId, { reason: "updated", message });
  }
  updateLastMessage(chatId, message);
  followVersion(chatId, message);
}

function updateLastMessage(chatId, message) {
  const chat = state.chats.get(chatId);
  if (!chat || !message) return;
  if (!chat.lastMessage || (chat.lastMessage.seq <= message.seq && isLater(message, chat.lastMessage))) {
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
  if (entry && entry.loaded) {
    const { added, changed } = applyMessages(chatId, [message]);
    if (added || changed) publish("messages", chatId, { reason: mine ? "sent" : "received", message });
  }
  // The answer to this tab's own send is not an event: the event with its version comes on the socket.
  if (live) followVersion(chatId, message);

  if (!chat) {
    fetchChat(chatId).catch(() => {});
    return;
  }
  const isNewer = !chat.lastMessage || chat.lastMessage.seq < message.seq;
  if (isNewer) {
    chat.lastMessage = message;
    chat.updatedAt = message.createdAt;
    if (!mine && live && !isVisiblyOpen(chatId)) {
      chat.unreadCount = (chat.unreadCount || 0) + 1;
      if (mentionsMe(message)) chat.mentionCount = (chat.mentionCount || 0) + 1;
    }
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
      chat.mentionCount = 0;
    } else if (entry && entry.loaded && !entry.hasMoreAfter && chat.lastMessage && contiguousSeq(chatId) >= chat.lastMessage.seq) {
      const unread = entry.items.filter((m) => m.seq > seq && m.senderId !== state.me.id);
      chat.unreadCount = unread.length;
      chat.mentionCount = unread.filter(mentionsMe).length;
    } else if (chat.lastMessage) {
      chat.unreadCount = Math.min(chat.unreadCount || 0, chat.lastMessage.seq - seq);
      chat.mentionCount = Math.min(chat.mentionCount || 0, chat.unreadCount);
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
  const hadMentions = (chat.mentionCount || 0) > 0;
  if (!chat.lastMessage || chat.lastMessage.seq <= seq) {
    chat.unreadCount = 0;
    chat.mentionCount = 0;
  }
  if (hadUnread || hadMentions) publish("chats");
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
// Acting on a message: edit, delete, react. Over the socket (acked) when it is up, else over HTTP; each is safe to
// repeat, so a socket that drops before the ack is followed by the same request over HTTP. The answer (the message in
// its new state) shows at once; the messageUpdated event that follows moves the chat's version.

async function act(event, payload, method, path, body) {
  let answer = null;
  if (transport.connected) {
    try {
      answer = await transport.request(event, payload, SEND_TIMEOUT_MS);
    } catch {
      answer = null; // no ack: ask again over HTTP
    }
    if (answer && answer.error) throw new ApiError(400, answer.error.code || "failed", answer.error.message || "That did not work.");
  }
  const message = answer && answer.message ? answer.message : (await api(method, path, body === undefined ? {} : { body })).message;
  applyChanges(message.chatId, [message]);
  updateLastMessage(message.chatId, message);
  return message;
}

function messagePath(chatId, seq) {
  return `/chats/${encodeURIComponent(chatId)}/messages/${seq}`;
}

/** Replaces the text of one's own text message. */
export function editMessage(chatId, seq, text) {
  return act("editMessage", { chatId, seq, text }, "PATCH", messagePath(chatId, seq), { text });
}

/** Deletes one's own message: it becomes a tombstone for everyone. */
export function deleteMessage(chatId, seq) {
  return act("deleteMessage", { chatId, seq }, "DELETE", messagePath(chatId, seq));
}

/** Adds (on) or removes one's reaction with `emoji`. */
export function react(chatId, seq, emoji, on) {
  return act("react", { chatId, seq, emoji, on }, on ? "PUT" : "DELETE",
    `${messagePath(chatId, seq)}/reactions/${encodeURIComponent(emoji)}`);
}

/** Full-text search over one's chats (or one of them): {results: [{message, highlights}], nextCursor}. */
export function searchMessages(query, { chatId = null, cursor = null, signal } = {}) {
  const params = new URLSearchParams({ q: query, limit: "20" });
  if (chatId) params.set("chatId", chatId);
  if (cursor) params.set("cursor", cursor);
  return api("GET", `/search?${params}`, { signal });
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
        .map((e) => ({ ...e, replyToSeq: Number.isInteger(e.replyToSeq) ? e.replyToSeq : null,
          status: e.status === "failed" ? "failed" : "queued", progress: 0 }))
      : [];
  } catch {
    return [];
  }
}

function saveOutbox() {
  if (!state.me) return;
  const texts = state.outbox.filter((e) => !e.file)
    .map(({ clientMessageId, chatId, text, createdAt, status, error, replyToSeq, replyTo }) =>
      ({ clientMessageId, chatId, text, createdAt, status, error, replyToSeq, replyTo }));
  try {
    if (texts.length) localStorage.setItem(OUTBOX_KEY(state.me.id), JSON.stringify(texts));
    else localStorage.removeItem(OUTBOX_KEY(state.me.id));
  } catch { /* storage full or unavailable */ }
}

export function outboxFor(chatId) {
  return state.outbox.filter((entry) => entry.chatId === chatId);
}

/**
 * Queues a message; `file` is an image File (then `text` is an optional caption); `replyTo` is the message it answers
 * (its preview shows on the pending row).
 */
export function send(chatId, text, file = null, dimensions = null, replyTo = null, { asFile = false } = {}) {
  const entry = {
    clientMessageId: uuid(),
    chatId,
    text,
    replyToSeq: replyTo ? replyTo.seq : null,
    replyTo: replyTo ? replyPreviewOf(replyTo) : null,
    file,
    // A file of any other kind is sent in the `file` field and shown as a chip; only images get a local preview.
    asFile: Boolean(file && asFile),
    previewUrl: file && !asFile ? URL.createObjectURL(file) : null,
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
      const payload = { chatId: entry.chatId, text: entry.text, clientMessageId: entry.clientMessageId };
      if (entry.replyToSeq !== null && entry.replyToSeq !== undefined) payload.replyToSeq = entry.replyToSeq;
      const answer = await transport.request("sendMessage", payload, SEND_TIMEOUT_MS);
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
