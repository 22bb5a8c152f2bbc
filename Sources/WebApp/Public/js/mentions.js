// @-mentions while writing: typing "@" and a few letters lists the chat's members; choosing one writes "@Name" in the
// text (what a person reads while writing) and remembers who it is, and `encode` turns each "@Name" into the
// `<@USER_ID>` the server stores, so a later rename does not break the mention.

import { h, avatar } from "./dom.js";
import { splitMentions } from "./format.js";

const MAX_OPTIONS = 8;
let nextListId = 0;

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, "\\$&");
}

export class MentionCompleter {
  /**
   * @param {HTMLTextAreaElement} input  the text being written
   * @param {HTMLElement} host           where the list shows (positioned; the list sits above or below it)
   * @param {() => Array<{id, name, avatarUrl}>} members  who can be mentioned (the chat's members but oneself)
   */
  constructor(input, host, members, { below = false } = {}) {
    this.input = input;
    this.members = members;
    this.names = new Map(); // "Name" → user id, for the mentions chosen or decoded
    this.options = [];
    this.active = 0;
    this.start = -1; // where the "@" is
    this.list = h(`div.mention-list${below ? ".below" : ""}`, { role: "listbox", id: `mention-list-${nextListId += 1}`, hidden: true });
    this.list.setAttribute("aria-label", "People to mention");
    host.append(this.list);
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", this.list.id);
    input.setAttribute("aria-expanded", "false");
    const update = () => this.update();
    input.addEventListener("input", update);
    input.addEventListener("click", update);
    input.addEventListener("keyup", (event) => {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight" || event.key === "Home" || event.key === "End") update();
    });
    input.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== input) this.close(); }, 150));
    // A press on an option must not take the focus from the text.
    this.list.addEventListener("mousedown", (event) => event.preventDefault());
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Handles the keys the open list uses; returns true when it did (the caller then ignores the key). */
  handleKeydown(event) {
    if (!this.isOpen) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.options.length) % this.options.length;
      this.renderActive();
      return true;
    }
    if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      event.preventDefault();
      this.choose(this.options[this.active]);
      return true;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.close();
      return true;
    }
    return false;
  }

  /** Reads the word before the caret: "@" and what follows it opens (or filters) the list. */
  update() {
    const { value, selectionStart, selectionEnd } = this.input;
    if (selectionStart !== selectionEnd) {
      this.close();
      return;
    }
    const before = value.slice(0, selectionStart);
    const match = /(?:^|\s)@([^\n@<>]{0,40})$/u.exec(before);
    if (!match) {
      this.close();
      return;
    }
    const query = match[1].toLocaleLowerCase();
    const found = this.members().filter((member) => {
      const name = member.name.toLocaleLowerCase();
      if (name.startsWith(query)) return true;
      // A single word also finds the later words of a name ("@smi" finds "Anna Smith").
      return !/\s/u.test(query) && name.split(/\s+/u).some((word) => word.startsWith(query));
    }).sort((a, b) => a.name.localeCompare(b.name)).slice(0, MAX_OPTIONS);
    if (found.length === 0) {
      this.close();
      return;
    }
    const same = found.length === this.options.length && found.every((member, i) => member.id === this.options[i].id);
    this.start = selectionStart - match[1].length - 1;
    this.options = found;
    if (!same) this.active = 0;
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.options.map((member, index) => {
      const option = h("div.mention-option", {
        role: "option", id: `${this.list.id}-${index}`, dataset: { userId: member.id },
      }, avatar({ id: member.id, name: member.name, avatarUrl: member.avatarUrl, size: "sm" }), h("span.person-name", member.name));
      option.addEventListener("click", () => this.choose(member));
      return option;
    }));
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.renderActive();
  }

  renderActive() {
    [...this.list.children].forEach((option, index) => {
      const active = index === this.active;
      option.classList.toggle("active", active);
      option.setAttribute("aria-selected", active ? "true" : "false");
      if (active) option.scrollIntoView({ block: "nearest" });
    });
    this.input.setAttribute("aria-activedescendant", `${this.list.id}-${this.active}`);
  }

  close() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.options = [];
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  /** Writes "@Name " in place of "@query" and remembers who Name is. */
  choose(member) {
    if (!member) return;
    const { value, selectionStart } = this.input;
    const insert = `@${member.name} `;
    this.input.value = value.slice(0, this.start) + insert + value.slice(selectionStart);
    const caret = this.start + insert.length;
    this.input.setSelectionRange(caret, caret);
    this.names.set(member.name, member.id);
    this.close();
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
    this.input.focus();
  }

  /** The text to send: every "@Name" of a chosen or current member becomes `<@USER_ID>`. */
  encode(text) {
    const names = new Map();
    for (const member of this.members()) names.set(member.name, member.id);
    for (const [name, id] of this.names) names.set(name, id);
    // Longer names first: "@Ann Lee" is not "@Ann" followed by " Lee".
    const ordered = [...names.entries()].sort((a, b) => b[0].length - a[0].length);
    let result = text;
    for (const [name, id] of ordered) {
      result = result.replace(new RegExp(`@${escapeRegExp(name)}(?![\\p{L}\\p{N}_])`, "gu"), `<@${id}>`);
    }
    return result;
  }

  /** The text of a stored message for editing: its mentions as "@Name" (remembered, so `encode` turns them back). */
  decode(message, nameOf) {
    return splitMentions(message.text || "", message.mentions || []).map((part) => {
      if (typeof part === "string") return part;
      const name = nameOf(part.userId);
      if (!name) return part.raw;
      this.names.set(name, part.userId);
      return `@${name}`;
    }).join("");
  }

  reset() {
    this.names = new Map();
    this.close();
  }
}
