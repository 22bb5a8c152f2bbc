// Dialogs: your profile (name, photo, sign out) and a new group (name and members).

import { $, h, avatar, icon, debounce, toast, notePictureLoaded } from "./dom.js";
import { api, uploadFile, ApiError } from "./api.js";
import { currentSession, updateUser, endSession } from "./session.js";
import * as store from "./store.js";

let wired = false;

export function initDialogs() {
  if (wired) return;
  wired = true;
  for (const button of document.querySelectorAll(".dialog-close")) {
    if (!button.firstChild) button.append(icon("close"));
  }
  for (const dialog of document.querySelectorAll("dialog.dialog")) {
    for (const closer of dialog.querySelectorAll(".dialog-close, [data-close]")) {
      closer.addEventListener("click", () => dialog.close());
    }
    // A click on the backdrop (outside the form) closes it.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
  }
  $("#me-button").addEventListener("click", openProfile);
  $("#new-group-button").append(icon("group"));
  $("#new-group-button").addEventListener("click", openGroup);
  $("#profile-form").addEventListener("submit", saveProfile);
  $("#logout-button").addEventListener("click", signOut);
  $("#profile-photo-input").addEventListener("change", choosePhoto);
  $("#profile-photo-remove").addEventListener("click", removePhoto);
  $("#profile-email-notifications").addEventListener("change", (event) =>
    saveSetting(event, "emailNotifications", "You'll get mail about messages you miss.", "No more mail about missed messages."));
  $("#profile-group-adds").addEventListener("change", (event) =>
    saveSetting(event, "allowGroupAdds", "People you chat with can add you to groups.", "No one can add you to groups now."));
  $("#group-form").addEventListener("submit", createGroup);
  $("#group-search").addEventListener("input", debounce(searchMembers, 250));
  $("#group-search").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      const first = $("#group-results .person-option");
      if (first) first.click();
    }
  });
  store.subscribe("me", renderMeButton);
  renderMeButton();
}

function setError(selector, message) {
  const element = $(selector);
  element.textContent = message || "";
  element.hidden = !message;
}

// ------------------------------------------------------------------------------------------------------------
// Profile

export function renderMeButton() {
  const me = store.state.me;
  const button = $("#me-button");
  if (!me) {
    button.replaceChildren();
    return;
  }
  button.replaceChildren(avatar({ id: me.id, name: me.name, avatarUrl: me.avatarUrl, size: "sm" }));
  button.title = `${me.name}: your profile`;
}

function openProfile() {
  const me = store.state.me;
  if (!me) return;
  renderProfilePhoto();
  $("#profile-email").textContent = me.email || "";
  $("#profile-name").value = me.name;
  $("#profile-email-notifications").checked = me.emailNotifications !== false;
  $("#profile-group-adds").checked = me.allowGroupAdds !== false;
  if (!photoBusy) setError("#profile-error", "");
  $("#profile-dialog").showModal();
  $("#profile-name").select();
}

// The photo: chosen with a file input, shown at once from the file, uploaded with progress to POST /files, then
// made the avatar with PATCH /me {avatarFileId}. Remove sends {avatarFileId: null}.

const MAX_PHOTO_BYTES = 10 * 1024 * 1024;
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
let photoBusy = false;
let photoPreview = null; // a blob: URL while a chosen photo goes up

function renderProfilePhoto() {
  const me = store.state.me;
  if (!me) return;
  const url = photoPreview || me.avatarUrl;
  $("#profile-avatar").replaceChildren(avatar({
    id: me.id, name: me.name, avatarUrl: url, size: "lg", alt: photoPreview ? "Your new photo" : "Your photo",
  }));
  $(".profile-photo").classList.toggle("busy", photoBusy);
  $("#profile-photo-change").classList.toggle("disabled", photoBusy);
  $("#profile-photo-input").disabled = photoBusy;
  $("#profile-photo-change-text").textContent = me.avatarUrl ? "Change photo" : "Add photo";
  const remove = $("#profile-photo-remove");
  remove.hidden = !me.avatarUrl;
  remove.disabled = photoBusy;
}

function setPhotoProgress(fraction) {
  const bar = $("#profile-photo-progress");
  if (fraction === null) {
    bar.hidden = true;
    bar.removeAttribute("aria-valuenow");
    bar.firstElementChild.style.width = "0";
    return;
  }
  const percent = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
  bar.hidden = false;
  bar.setAttribute("aria-valuenow", String(percent));
  bar.firstElementChild.style.width = `${Math.max(percent, 3)}%`;
}

function photoError(message) {
  if ($("#profile-dialog").open) setError("#profile-error", message);
  else toast(message, { kind: "error" });
}

async function choosePhoto(event) {
  const input = event.target;
  const file = input.files && input.files[0];
  input.value = ""; // choosing the same file again still fires "change"
  if (!file || photoBusy) return;
  setError("#profile-error", "");
  if (file.type && !PHOTO_TYPES.includes(file.type)) {
    photoError("Pick a JPEG, PNG, GIF or WebP image.");
    return;
  }
  if (file.size > MAX_PHOTO_BYTES) {
    photoError("That image is too large (10 MB at most).");
    return;
  }
  photoBusy = true;
  photoPreview = URL.createObjectURL(file);
  renderProfilePhoto();
  setPhotoProgress(0);
  try {
    const { file: stored } = await uploadFile(file, setPhotoProgress);
    setPhotoProgress(1);
    const user = await api("PATCH", "/me", { body: { avatarFileId: stored.id } });
    // Fetch the stored picture before the preview goes, so the avatar does not flash back to initials.
    await preload(user.avatarUrl);
    updateUser(user);
    store.setMe(user);
    toast("Your photo is saved.");
  } catch (error) {
    photoError(error.message || "Couldn't save your photo.");
  } finally {
    URL.revokeObjectURL(photoPreview);
    photoPreview = null;
    photoBusy = false;
    setPhotoProgress(null);
    renderProfilePhoto();
  }
}

/** Resolves when `url` has loaded or failed, or after a few seconds, whichever comes first. */
function preload(url) {
  if (!url) return Promise.resolve();
  return new Promise((resolve) => {
    const img = new Image();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, 5000);
    img.onload = () => {
      if (img.naturalWidth > 0) notePictureLoaded(url);
      done();
    };
    img.onerror = done;
    img.src = url;
  });
}

async function removePhoto() {
  if (photoBusy || !store.state.me || !store.state.me.avatarUrl) return;
  setError("#profile-error", "");
  photoBusy = true;
  renderProfilePhoto();
  try {
    const user = await api("PATCH", "/me", { body: { avatarFileId: null } });
    updateUser(user);
    store.setMe(user);
    toast("Your photo is removed.");
  } catch (error) {
    photoError(error.message || "Couldn't remove your photo.");
  } finally {
    photoBusy = false;
    renderProfilePhoto();
  }
}

async function saveProfile(event) {
  event.preventDefault();
  const name = $("#profile-name").value.trim();
  if (!name) {
    setError("#profile-error", "Your name can't be empty.");
    return;
  }
  if (name === store.state.me.name) {
    $("#profile-dialog").close();
    return;
  }
  const button = $("#profile-save");
  button.disabled = true;
  try {
    const user = await api("PATCH", "/me", { body: { name } });
    updateUser(user);
    store.setMe(user);
    $("#profile-dialog").close();
    toast("Your name is saved.");
  } catch (error) {
    setError("#profile-error", error.message || "Couldn't save your name.");
  } finally {
    button.disabled = false;
  }
}

// A setting (missed-message mail, being added to groups): saved as soon as its box changes (one click turns it off),
// put back if that fails.
async function saveSetting(event, field, onText, offText) {
  const box = event.target;
  const wanted = box.checked;
  box.disabled = true;
  setError("#profile-error", "");
  try {
    const user = await api("PATCH", "/me", { body: { [field]: wanted } });
    store.setMe(user);
    box.checked = user[field] !== false;
    toast(wanted ? onText : offText);
  } catch (error) {
    box.checked = !wanted;
    setError("#profile-error", error.message || "Couldn't save that setting.");
  } finally {
    box.disabled = false;
  }
}

async function signOut() {
  const session = currentSession();
  $("#profile-dialog").close();
  if (session) {
    try {
      await api("POST", "/logout", { body: { refreshToken: session.refreshToken }, auth: false });
    } catch { /* signed out here either way */ }
  }
  endSession();
}

// ------------------------------------------------------------------------------------------------------------
// New group

let chosen = new Map();
let searchController = null;

function openGroup() {
  chosen = new Map();
  $("#group-name").value = "";
  $("#group-search").value = "";
  setError("#group-error", "");
  renderChips();
  renderResults(suggestions(), "People you chat with");
  $("#group-dialog").showModal();
  $("#group-name").focus();
}

function suggestions() {
  const people = new Map();
  for (const chat of store.sortedChats()) {
    for (const member of chat.members) {
      if (store.state.me && member.id === store.state.me.id) continue;
      if (!people.has(member.id)) people.set(member.id, member);
    }
  }
  return [...people.values()].slice(0, 20);
}

async function searchMembers() {
  const query = $("#group-search").value.trim();
  if (searchController) searchController.abort();
  if (!query) {
    renderResults(suggestions(), "People you chat with");
    return;
  }
  const controller = new AbortController();
  searchController = controller;
  renderResults(null, "Searching…");
  try {
    const people = await store.searchPeople(query, controller.signal);
    if (!controller.signal.aborted) renderResults(people, people.length ? "People" : `Nobody called “${query}”.`);
  } catch (error) {
    if (!controller.signal.aborted) renderResults([], error instanceof ApiError ? error.message : "Couldn't search.");
  }
}

function renderResults(people, heading) {
  const host = $("#group-results");
  const nodes = [h("p.list-note.muted", heading)];
  for (const person of people || []) {
    const selected = chosen.has(person.id);
    const option = h(`button.person-option${selected ? ".selected" : ""}`, {
      type: "button", role: "option", "aria-selected": selected ? "true" : "false", dataset: { userId: person.id },
    },
    avatar({ id: person.id, name: person.name, avatarUrl: person.avatarUrl, size: "sm" }),
    h("span.person-name", person.name),
    h("span.check-mark", selected ? icon("check") : null));
    option.addEventListener("click", () => {
      if (chosen.has(person.id)) chosen.delete(person.id);
      else chosen.set(person.id, person);
      option.classList.toggle("selected", chosen.has(person.id));
      option.setAttribute("aria-selected", chosen.has(person.id) ? "true" : "false");
      option.querySelector(".check-mark").replaceChildren(...(chosen.has(person.id) ? [icon("check")] : []));
      renderChips();
      setError("#group-error", "");
    });
    nodes.push(option);
  }
  host.replaceChildren(...nodes);
}

function renderChips() {
  const host = $("#group-chips");
  host.replaceChildren(...[...chosen.values()].map((person) => {
    const chip = h("span.chip", person.name,
      h("button.chip-remove", { type: "button", "aria-label": `Remove ${person.name}` }, icon("close")));
    chip.querySelector("button").addEventListener("click", () => {
      chosen.delete(person.id);
      renderChips();
      const option = $(`#group-results [data-user-id="${CSS.escape(person.id)}"]`);
      if (option) {
        option.classList.remove("selected");
        option.setAttribute("aria-selected", "false");
        option.querySelector(".check-mark").replaceChildren();
      }
    });
    return chip;
  }));
  host.hidden = chosen.size === 0;
  $("#group-create").textContent = chosen.size ? `Create group (${chosen.size + 1})` : "Create group";
}

async function createGroup(event) {
  event.preventDefault();
  const name = $("#group-name").value.trim();
  if (!name) {
    setError("#group-error", "Give the group a name.");
    $("#group-name").focus();
    return;
  }
  if (chosen.size === 0) {
    setError("#group-error", "Add at least one person.");
    $("#group-search").focus();
    return;
  }
  const button = $("#group-create");
  button.disabled = true;
  try {
    const chatId = await store.createGroup(name, [...chosen.keys()]);
    $("#group-dialog").close();
    window.location.hash = `#/chat/${encodeURIComponent(chatId)}`;
  } catch (error) {
    setError("#group-error", error.message || "Couldn't create the group.");
  } finally {
    button.disabled = false;
  }
}

export function closeDialogs() {
  for (const dialog of document.querySelectorAll("dialog")) if (dialog.open) dialog.close();
}
