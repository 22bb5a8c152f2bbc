// The details behind a chat's header. A group: its name and photo, its members with their roles, and what one's role
// allows (owners and admins rename, set the photo, add, remove, make admins; the owner hands ownership over; anyone
// leaves). A direct chat: the other person, with block and unblock.

import { $, h, avatar, debounce, toast } from "./dom.js";
import { uploadFile, ApiError } from "./api.js";
import * as store from "./store.js";

let chatId = null;
let busy = false;
let addQuery = "";
let addResults = null; // null: suggestions; otherwise the people the search found
let searchController = null;

export function initChatDetails() {
  const dialog = $("#members-dialog");
  dialog.addEventListener("close", () => {
    chatId = null;
  });
  const rerender = () => {
    if (chatId && dialog.open) render();
  };
  store.subscribe("chats", rerender);
  store.subscribe("blocks", rerender);
  store.subscribe("removed", (id) => {
    if (id === chatId) dialog.close();
  });
}

/** Opens the details of chat `id`. */
export function openChatDetails(id) {
  const chat = store.state.chats.get(id);
  if (!chat) return;
  chatId = id;
  addQuery = "";
  addResults = null;
  setError("");
  render();
  $("#members-dialog").showModal();
  if (chat.kind === "direct" && store.state.blocked === null) store.loadBlocks().catch(() => {});
}

function setError(message) {
  const element = $("#members-error");
  element.textContent = message || "";
  element.hidden = !message;
}

/** Runs one change, showing its refusal in the dialog. */
async function act(work, done) {
  if (busy) return;
  busy = true;
  setError("");
  try {
    await work();
    if (done) toast(done);
  } catch (error) {
    setError(error instanceof ApiError || error.message ? error.message : "Something went wrong.");
  } finally {
    busy = false;
    if (chatId) render();
  }
}

function render() {
  const chat = store.state.chats.get(chatId);
  if (!chat) {
    $("#members-dialog").close();
    return;
  }
  // A re-render (someone else changed the group) keeps what is being typed, and where.
  const focused = document.activeElement;
  const typing = focused && ["group-settings-name", "group-add-search"].includes(focused.id)
    ? { id: focused.id, value: focused.value, start: focused.selectionStart, end: focused.selectionEnd }
    : null;
  if (chat.kind === "group") renderGroup(chat);
  else renderPerson(chat);
  const again = typing && document.getElementById(typing.id);
  if (again) {
    again.value = typing.value;
    again.focus();
    again.setSelectionRange(typing.start, typing.end);
  }
}

const ROLE_LABELS = { owner: "Owner", admin: "Admin" };

function renderGroup(chat) {
  const me = store.state.me ? store.state.me.id : null;
  const role = store.myRole(chat);
  const manages = role === "owner" || role === "admin";
  $("#members-title").textContent = `${store.chatTitle(chat)} · ${chat.members.length} ${chat.members.length === 1 ? "member" : "members"}`;

  const photo = h("div.group-settings-photo",
    avatar({ id: chat.id, name: store.chatTitle(chat), avatarUrl: chat.avatarUrl, group: true, size: "lg" }));
  const settings = [photo];
  if (manages) {
    const input = h("input#group-settings-name", { type: "text", maxlength: "100", value: chat.name || "", "aria-label": "Group name" });
    const form = h("form.group-settings-name", { novalidate: true }, input,
      h("button#group-settings-save.button.small", { type: "submit" }, "Rename"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (!name) {
        setError("Give the group a name.");
        return;
      }
      if (name === chat.name) return;
      act(() => store.updateGroup(chat.id, { name }), "The group is renamed.");
    });
    const file = h("input#group-photo-input.visually-hidden", { type: "file", accept: "image/jpeg,image/png,image/gif,image/webp" });
    file.addEventListener("change", () => {
      const chosen = file.files && file.files[0];
      file.value = "";
      if (!chosen) return;
      act(async () => {
        const { file: stored } = await uploadFile(chosen, () => {});
        await store.updateGroup(chat.id, { avatarFileId: stored.id });
      }, "The group photo is saved.");
    });
    const photoActions = [h("label#group-photo-change.button.small", file, chat.avatarUrl ? "Change photo" : "Add photo")];
    if (chat.avatarUrl) {
      const remove = h("button#group-photo-remove.button.small.danger-text", { type: "button" }, "Remove photo");
      remove.addEventListener("click", () => act(() => store.updateGroup(chat.id, { avatarFileId: null }), "The group photo is removed."));
      photoActions.push(remove);
    }
    settings.push(h("div.group-settings-fields", form, h("div.group-settings-photo-actions", ...photoActions)));
  }
  $("#chat-settings").replaceChildren(...settings);

  const members = [...chat.members].sort((a, b) => rank(a) - rank(b) || (a.id === me) - (b.id === me) || a.name.localeCompare(b.name));
  $("#members-list").replaceChildren(...members.map((member) => memberRow(chat, member, role, me)));

  const actions = [];
  if (manages) actions.push(addSection(chat));
  const leave = h("button#group-leave.button.danger-text", { type: "button" }, "Leave group");
  leave.addEventListener("click", () => act(() => store.removeMember(chat.id, me), "You left the group."));
  actions.push(h("div.dialog-actions", h("span.spacer"), leave));
  $("#chat-details-actions").replaceChildren(...actions);
}

function rank(member) {
  return { owner: 0, admin: 1 }[member.role] ?? 2;
}

function memberRow(chat, member, myRole, me) {
  const presence = member.id === me ? "online" : store.presenceOf(member.id);
  const status = member.id === me ? "you" : presence === "online" ? "online" : "";
  const badge = ROLE_LABELS[member.role] ? h(`span.role-badge.role-${member.role}`, ROLE_LABELS[member.role]) : null;
  const buttons = [];
  const button = (label, action, work, done) => {
    const node = h("button.button.small", { type: "button", dataset: { action } }, label);
    node.addEventListener("click", () => act(work, done));
    buttons.push(node);
  };
  if (member.id !== me && (myRole === "owner" || myRole === "admin")) {
    if (member.role === "member") {
      button("Make admin", "admin", () => store.setRole(chat.id, member.id, "admin"), `${member.name} is an admin.`);
    } else if (member.role === "admin" && myRole === "owner") {
      button("Remove admin", "unadmin", () => store.setRole(chat.id, member.id, "member"), `${member.name} is no longer an admin.`);
    }
    if (myRole === "owner") {
      button("Make owner", "owner", () => store.setRole(chat.id, member.id, "owner"), `${member.name} owns the group now.`);
    }
    if (member.role === "member" || (myRole === "owner" && member.role !== "owner")) {
      const node = h("button.button.small.danger-text", { type: "button", dataset: { action: "remove" } }, "Remove");
      node.addEventListener("click", () => act(() => store.removeMember(chat.id, member.id), `${member.name} is removed.`));
      buttons.push(node);
    }
  }
  return h(`div.member-item${buttons.length ? ".with-actions" : ""}`, { dataset: { userId: member.id, role: member.role || "member" } },
    avatar({ id: member.id, name: member.name, avatarUrl: member.avatarUrl, online: presence === "online" && member.id !== me }),
    h("span.person-name", member.name, badge,
      status ? h(`span.member-status${status === "online" ? ".online" : ""}`, status) : null),
    buttons.length ? h("span.member-actions", ...buttons) : null);
}

/** People one may add: those one already chats with (the server refuses others), or whom a search finds. */
function addSection(chat) {
  const members = new Set(chat.members.map((m) => m.id));
  const me = store.state.me ? store.state.me.id : null;
  let people = addResults;
  if (people === null) {
    const known = new Map();
    for (const other of store.sortedChats()) {
      for (const member of other.members) if (member.id !== me && !known.has(member.id)) known.set(member.id, member);
    }
    people = [...known.values()];
  }
  people = people.filter((person) => !members.has(person.id)).slice(0, 8);
  const input = h("input#group-add-search", { type: "search", placeholder: "Add people: search by name", autocomplete: "off",
    maxlength: "100", value: addQuery, "aria-label": "Add people" });
  input.addEventListener("input", debounce(() => search(input.value.trim()), 250));
  const results = h("div#group-add-results.group-results", { role: "list" },
    ...(people.length ? people.map((person) => {
      const add = h("button.button.small", { type: "button", dataset: { action: "add" } }, "Add");
      add.addEventListener("click", () => act(() => store.addMembers(chat.id, [person.id]), `${person.name} is added.`));
      return h("div.person-option", { dataset: { userId: person.id } },
        avatar({ id: person.id, name: person.name, avatarUrl: person.avatarUrl, size: "sm" }), h("span.person-name", person.name), add);
    }) : [h("p.list-note.muted", addQuery ? "No one to add." : "No one else you chat with.")]));
  return h("section.group-add", input, results);
}

async function search(query) {
  addQuery = query;
  if (searchController) searchController.abort();
  if (!query) {
    addResults = null;
    render();
    return;
  }
  const controller = new AbortController();
  searchController = controller;
  try {
    const people = await store.searchPeople(query, controller.signal);
    if (controller.signal.aborted) return;
    addResults = people;
    render();
    const input = $("#group-add-search");
    if (input) {
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    }
  } catch {
    /* a newer search replaced this one, or the network failed: the list stays */
  }
}

function renderPerson(chat) {
  const other = store.otherMember(chat);
  $("#members-title").textContent = store.chatTitle(chat);
  $("#members-list").replaceChildren();
  if (!other) {
    $("#chat-settings").replaceChildren();
    $("#chat-details-actions").replaceChildren();
    return;
  }
  const presence = store.presenceOf(other.id);
  $("#chat-settings").replaceChildren(h("div.person-profile",
    avatar({ id: other.id, name: other.name, avatarUrl: other.avatarUrl, size: "lg", online: presence === "online" }),
    h("strong.person-profile-name", other.name),
    h("span.muted", presence === "online" ? "online" : "")));
  const blocked = Boolean(store.state.blocked && store.state.blocked.has(other.id));
  const note = h("p.muted.block-note", blocked
    ? `You block ${other.name}: neither of you can write here, and they can't add you to groups.`
    : `Blocked people can't message you or add you to groups. They aren't told.`);
  const toggle = h(`button#block-button.button${blocked ? "" : ".danger-text"}`, { type: "button", dataset: { blocked: blocked ? "true" : "false" } },
    blocked ? `Unblock ${other.name}` : `Block ${other.name}`);
  toggle.addEventListener("click", () => act(() => store.setBlocked(other, !blocked), blocked ? `${other.name} is unblocked.` : `${other.name} is blocked.`));
  $("#chat-details-actions").replaceChildren(note, h("div.dialog-actions", h("span.spacer"), toggle));
}
