// Parley's web app: sign in, or the chat list and the open chat (#/chat/<id>), plus the connection banner.

import { $, show } from "./dom.js";
import { api } from "./api.js";
import { currentSession, onSessionChange, updateUser } from "./session.js";
import { showLogin, hideLogin } from "./login.js";
import * as store from "./store.js";
import { startRealtime, stopRealtime, retryNow, nextRetryIn } from "./realtime.js";
import { initChatList, clearSearch } from "./chatlist.js";
import { initChatView, openChat, closeChat, resetChatView, currentChatId } from "./chatview.js";
import { initDialogs, closeDialogs, renderMeButton } from "./dialogs.js";
import { initChatDetails } from "./chatdetails.js";

let running = false;
let bannerTimer = null;
let startedAt = 0;
let wasConnected = false;

function boot() {
  show($("#boot"), false);
  onSessionChange((session, reason) => {
    if (reason === "signin") {
      if (running) stopApp();
      hideLogin();
      startApp(session.user);
    } else if (reason === "signout") {
      stopApp();
      showLogin();
    } else if (reason === "update" && session) {
      store.setMe(session.user);
    }
  });
  const session = currentSession();
  if (session) startApp(session.user);
  else showLogin();
}

function startApp(user) {
  running = true;
  startedAt = Date.now();
  wasConnected = false;
  store.reset(user);
  initDialogs();
  initChatDetails();
  initChatList();
  initChatView();
  renderMeButton();
  show($("#auth"), false);
  show($("#app"), true);
  store.publish("chats");
  store.publish("me");

  store.loadChats().catch(() => {}).finally(route);
  store.loadBlocks().catch(() => {});
  // The stored user may be stale (renamed in another tab or device); a refused session ends itself in api().
  api("GET", "/me").then((fresh) => {
    updateUser(fresh);
    store.setMe(fresh);
  }).catch(() => {});
  startRealtime();
  route();
}

function stopApp() {
  running = false;
  stopRealtime();
  resetChatView();
  closeDialogs();
  clearSearch();
  store.reset(null);
  store.publish("chats");
  show($("#app"), false);
  show($("#connection-banner"), false);
  window.history.replaceState(null, "", window.location.pathname);
}

// ------------------------------------------------------------------------------------------------------------
// Routing: #/chat/<id> opens a chat; anything else shows the list.

function route() {
  if (!running) return;
  const match = /^#\/chat\/([^/?#]+)$/u.exec(window.location.hash);
  const app = $("#app");
  if (match) {
    const chatId = decodeURIComponent(match[1]);
    if (!store.state.chats.has(chatId) && store.state.chatsLoaded) {
      // Not one of ours (or gone): back to the list.
      window.location.replace("#/");
      return;
    }
    app.classList.add("chat-open");
    if (currentChatId() !== chatId) openChat(chatId);
  } else {
    app.classList.remove("chat-open");
    if (currentChatId()) closeChat();
  }
}

window.addEventListener("hashchange", route);

// Ctrl+K / Cmd+K searches; Escape closes the chat on a phone-sized screen, as the back button does.
document.addEventListener("keydown", (event) => {
  if (running && (event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    if (currentChatId() && window.matchMedia("(max-width: 760px)").matches) window.location.hash = "#/";
    $("#search-input").focus();
    $("#search-input").select();
    return;
  }
  if (event.key === "Escape" && running && currentChatId() && !document.querySelector("dialog[open]")
      && window.matchMedia("(max-width: 760px)").matches) {
    window.location.hash = "#/";
  }
});

// ------------------------------------------------------------------------------------------------------------
// The connection banner: shown while the realtime link is down (after a short grace period on first connect).

store.subscribe("connection", renderBanner);
window.addEventListener("online", renderBanner);
window.addEventListener("offline", renderBanner);
$("#connection-retry").addEventListener("click", () => retryNow());

function renderBanner() {
  clearTimeout(bannerTimer);
  const banner = $("#connection-banner");
  if (!running) {
    show(banner, false);
    return;
  }
  const { state } = store.state.connection;
  const app = $("#app");
  if (state === "connected") {
    if (!banner.hidden && banner.classList.contains("offline")) {
      banner.classList.remove("offline");
      banner.classList.add("back");
      $("#connection-text").textContent = "Back online";
      show($("#connection-retry"), false);
      bannerTimer = setTimeout(() => {
        show(banner, false);
        app.classList.remove("has-banner");
      }, 1500);
    } else {
      show(banner, false);
      app.classList.remove("has-banner");
    }
    return;
  }
  // Give the first connection a moment before saying anything.
  if (!wasConnected && Date.now() - startedAt < 2500 && navigator.onLine) {
    bannerTimer = setTimeout(renderBanner, 2500 - (Date.now() - startedAt));
    return;
  }
  const seconds = nextRetryIn();
  let text;
  if (!navigator.onLine) text = "You're offline. Messages you write will be sent when you're back.";
  else if (state === "connecting") text = "Connecting…";
  else if (seconds !== null && seconds >= 1) text = `Connection lost. Reconnecting in ${Math.ceil(seconds)} s…`;
  else text = "Connection lost. Reconnecting…";
  $("#connection-text").textContent = text;
  banner.classList.add("offline");
  banner.classList.remove("back");
  show($("#connection-retry"), navigator.onLine && state !== "connecting");
  show(banner, true);
  app.classList.add("has-banner");
  bannerTimer = setTimeout(renderBanner, 1000);
}

store.subscribe("connection", () => {
  if (store.state.connection.state === "connected") wasConnected = true;
});

boot();
