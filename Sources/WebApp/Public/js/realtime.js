// The realtime link: the Socket.IO client wired to the store. On every (re)connect it re-reads the chat list,
// catches up the loaded chats with `/changes?after=<last version>` (new messages, edits, deletes and reactions made
// while it was away), re-joins the open chat and flushes the outbox.

import { SocketIOClient } from "./socketio.js";
import { accessToken, endSession, onSessionChange, refresh, SessionExpired } from "./session.js";
import * as store from "./store.js";
import { toast } from "./dom.js";

let socket = null;
let joined = null; // the chat this socket asked to join
let serverReads = null; // the joined chat once the server confirmed: it marks that chat's arriving messages read
let stopRenewing = null; // removes the listener that renews the socket's token in-band

export function startRealtime() {
  stopRealtime();
  let debug = false;
  try { debug = localStorage.getItem("parley.debug") === "1"; } catch { /* ignore */ }
  socket = new SocketIOClient({
    debug,
    auth: async () => ({ token: await accessToken() }),
    onState: (state, detail) => {
      const was = store.state.connection.state;
      store.state.connection = { state, detail, since: Date.now() };
      if (state !== "connected") {
        joined = null;
        serverReads = null;
        // Who is online is unknown until getOnlineUser arrives on the next connection.
        if (was === "connected") store.clearPresence();
      }
      store.publish("connection");
    },
    onConnectError: async (error) => {
      if (error && error.message === "unauthorized") {
        try {
          await refresh();
        } catch (problem) {
          if (problem instanceof SessionExpired) socket.close();
        }
      }
    },
  });
  store.setTransport({
    get connected() { return socket !== null && socket.connected; },
    request: (event, data, timeout) => socket.request(event, data, timeout),
    emit: (event, data) => socket.emit(event, data),
    marksReadOnArrival: (chatId) => socket !== null && socket.connected && serverReads === chatId,
  });

  socket.on("connect", onConnect);
  socket.on("newMessage", (message) => {
    if (message && message.chatId) store.receiveMessage(message);
  });
  socket.on("messageUpdated", (message) => {
    if (message && message.chatId) store.receiveUpdate(message);
  });
  socket.on("messagesSeen", (payload) => {
    if (payload && payload.chatId) store.receiveSeen(payload);
  });
  // Several members who had the chat open read your messages: their pointers at once.
  socket.on("readState", (payload) => {
    if (!payload || !payload.chatId || !Array.isArray(payload.readState)) return;
    for (const entry of payload.readState) {
      if (entry && entry.userId) store.receiveSeen({ chatId: payload.chatId, userId: entry.userId, seq: entry.lastReadSeq });
    }
  });
  socket.on("userTyping", (payload) => {
    if (payload && payload.chatId) store.startTyping(payload.chatId, payload.userId);
  });
  socket.on("userStoppedTyping", (payload) => {
    if (payload && payload.chatId) store.stopTyping(payload.chatId, payload.userId);
  });
  socket.on("getOnlineUser", (ids) => {
    if (Array.isArray(ids)) store.setOnline(ids);
  });
  socket.on("userOnline", (payload) => {
    if (payload && payload.userId) store.userOnline(payload.userId);
  });
  socket.on("userOffline", (payload) => {
    if (payload && payload.userId) store.userOffline(payload.userId);
  });
  // Several contacts came or went within one short window (a reconnect storm): one event lists them all.
  socket.on("presence", (payload) => {
    if (!payload) return;
    const me = store.state.me ? store.state.me.id : null;
    for (const id of Array.isArray(payload.online) ? payload.online : []) if (id !== me) store.userOnline(id);
    for (const id of Array.isArray(payload.offline) ? payload.offline : []) if (id !== me) store.userOffline(id);
  });
  socket.on("chatUpdated", (summary) => {
    if (summary && summary.id) {
      store.mergeChat(summary, { keepCounts: true });
      store.publish("chats");
      store.publish("readState", summary.id);
    }
  });
  // Removed from a group, or left it (on this device or another): the chat goes from the list.
  socket.on("chatRemoved", (payload) => {
    const chat = payload && payload.chatId ? store.state.chats.get(payload.chatId) : null;
    if (!chat) return; // left from this tab: already gone
    store.forgetChat(payload.chatId);
    toast(`You are no longer in ${store.chatTitle(chat)}.`);
  });
  // A socket lasts as long as its access token: each refreshed token renews it in-band, so it never drops. The server
  // ends a socket whose token expired anyway (the tab slept), or whose login session ended elsewhere (signed out on
  // another device, or revoked): the first reconnects with a fresh token by itself, the second signs out here.
  stopRenewing = onSessionChange((current, reason) => {
    if (reason === "refresh" && current && socket && socket.connected) {
      socket.request("auth", { token: current.accessToken }).catch(() => { /* the next reconnect authenticates */ });
    }
  });
  socket.on("sessionEnded", (payload) => {
    const reason = payload && payload.reason;
    if (reason === "logged_out" || reason === "revoked") {
      stopRealtime();
      endSession();
    }
  });
  socket.connect();
}

export function stopRealtime() {
  if (stopRenewing) stopRenewing();
  stopRenewing = null;
  if (socket) socket.close();
  socket = null;
  joined = null;
  serverReads = null;
  store.setTransport({ connected: false, request: () => Promise.reject(new Error("offline")), emit: () => false });
}

export function retryNow() {
  if (socket) socket.reconnectNow();
}

/** Seconds until the next reconnect attempt, or null. */
export function nextRetryIn() {
  if (!socket || !socket.nextRetryAt) return null;
  return Math.max(0, (socket.nextRetryAt - Date.now()) / 1000);
}

async function onConnect() {
  syncOpenChat();
  store.processOutbox();
  let chats;
  try {
    chats = await store.loadChats();
  } catch {
    return; // the list keeps what it had; the next reconnect tries again
  }
  store.notePresenceKnown(chats);
  const work = [];
  for (const [chatId, entry] of store.state.histories) {
    const chat = store.state.chats.get(chatId);
    // A summary without a version (an older server) says nothing: catch up to be sure.
    if (entry.loaded && chat && (typeof chat.version !== "number" || chat.version > entry.version)) {
      work.push(store.catchUp(chatId).catch(() => {}));
    }
  }
  await Promise.all(work);
  if (store.state.openChatId) store.markReadIfVisible(store.state.openChatId);
}

/**
 * Keeps the socket joined to the chat that is open and visible. Once the server has confirmed the join it owns the read
 * pointer of the messages that arrive in that chat (it marks them read as it delivers them), so this tab does not mark
 * them again; until then, and for what it loads or scrolls to, the tab marks read itself.
 */
export function syncOpenChat() {
  if (!socket || !socket.connected) return;
  const wanted = store.state.openChatId && document.visibilityState === "visible" ? store.state.openChatId : null;
  if (wanted === joined) return;
  if (joined) socket.emit("leaveChat", joined);
  serverReads = null;
  joined = wanted;
  if (!wanted) return;
  const asking = socket;
  socket.request("joinChat", wanted, 10000).then((answer) => {
    if (answer && answer.ok && socket === asking && joined === wanted) serverReads = wanted;
  }).catch(() => {});
}

// Typing: "typing" at most every 2.5 s while keys are pressed, "stopTyping" after 3 s of quiet or on send.
let typingChat = null;
let typingSentAt = 0;
let typingIdle = null;

export function noteTyping(chatId) {
  if (!socket || !socket.connected) return;
  const now = Date.now();
  if (typingChat !== chatId) {
    stopTypingNow();
    typingSentAt = 0;
  }
  typingChat = chatId;
  if (now - typingSentAt > 2500) {
    typingSentAt = now;
    socket.emit("typing", { chatId });
  }
  clearTimeout(typingIdle);
  typingIdle = setTimeout(stopTypingNow, 3000);
}

export function stopTypingNow() {
  clearTimeout(typingIdle);
  if (typingChat && socket && socket.connected && typingSentAt) socket.emit("stopTyping", { chatId: typingChat });
  typingChat = null;
  typingSentAt = 0;
}

window.addEventListener("online", () => retryNow());
window.addEventListener("offline", () => {
  if (socket) socket.dropConnection("browser offline");
});
document.addEventListener("visibilitychange", () => {
  syncOpenChat();
  if (document.visibilityState === "visible") {
    if (socket && socket.state === "reconnecting") socket.reconnectNow();
    if (store.state.openChatId) store.markReadIfVisible(store.state.openChatId);
  } else {
    stopTypingNow();
  }
});
