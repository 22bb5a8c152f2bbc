// Popovers anchored to the button that opened them: a message's action menu and the emoji picker. One is open at a
// time; arrow keys move through it, Escape closes it and gives the focus back to its button, a click outside closes it.

import { h, icon } from "./dom.js";

/** The emoji the picker offers (reactions accept any single emoji; these are the common ones). */
export const EMOJI = [
  "👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀",
  "🔥", "✅", "👏", "😄", "🤔", "💯", "🚀", "👎",
  "😍", "🙌", "😅", "👌", "💪", "☕", "🤝", "😎",
];

let current = null; // {element, anchor, refind}

/** The open popover's element, if any. */
export function openPopover() {
  return current ? current.element : null;
}

/** Closes the open popover; the focus goes back to its button (or the button that replaced it in a re-render). */
export function closePopover({ restoreFocus = true } = {}) {
  if (!current) return;
  const { element, anchor, refind } = current;
  current = null;
  element.remove();
  anchor.setAttribute("aria-expanded", "false");
  if (!restoreFocus) return;
  const target = anchor.isConnected ? anchor : refind();
  if (target) target.focus({ preventScroll: true });
}

function show(element, anchor) {
  closePopover({ restoreFocus: false });
  // A message row may be rebuilt while its menu is open: find its button again by the row's key.
  const row = anchor.closest("[data-key]");
  const key = row ? row.dataset.key : null;
  const focus = anchor.dataset.focus || null;
  current = {
    element,
    anchor,
    refind: () => (key && focus
      ? document.querySelector(`[data-key="${CSS.escape(key)}"] [data-focus="${CSS.escape(focus)}"]`)
      : null),
  };
  anchor.setAttribute("aria-expanded", "true");
  document.body.append(element);
  place(element, anchor);
}

/** Below the button, right-aligned with it; above it when there is no room below; always inside the window. */
function place(element, anchor) {
  const margin = 8;
  const rect = anchor.getBoundingClientRect();
  const width = element.offsetWidth;
  const height = element.offsetHeight;
  let left = Math.min(rect.right - width, window.innerWidth - margin - width);
  left = Math.max(margin, left);
  let top = rect.bottom + 4;
  if (top + height > window.innerHeight - margin) top = rect.top - 4 - height;
  top = Math.max(margin, top);
  element.style.left = `${left}px`;
  element.style.top = `${top}px`;
}

document.addEventListener("pointerdown", (event) => {
  if (current && !current.element.contains(event.target) && !current.anchor.contains(event.target)) {
    closePopover({ restoreFocus: false });
  }
}, true);
window.addEventListener("resize", () => closePopover({ restoreFocus: false }));

/** Moves the focus among `buttons` with the arrow keys (`columns` > 1: a grid), Home and End; Escape and Tab close. */
function keyboard(event, buttons, columns = 1) {
  const index = buttons.indexOf(document.activeElement);
  const moves = {
    ArrowDown: columns,
    ArrowUp: -columns,
    ArrowRight: columns > 1 ? 1 : 0,
    ArrowLeft: columns > 1 ? -1 : 0,
  };
  if (event.key in moves && moves[event.key] !== 0) {
    event.preventDefault();
    const step = moves[event.key];
    let next = index === -1 ? 0 : index + step;
    if (columns === 1) next = (next + buttons.length) % buttons.length;
    else next = Math.min(buttons.length - 1, Math.max(0, next));
    buttons[next].focus();
  } else if (event.key === "Home" || event.key === "End") {
    event.preventDefault();
    buttons[event.key === "Home" ? 0 : buttons.length - 1].focus();
  } else if (event.key === "Escape" || event.key === "Tab") {
    event.preventDefault();
    event.stopPropagation();
    closePopover();
  }
}

/**
 * Opens a menu under `anchor`: items are {id, label, icon?, danger?, action}. The first item takes the focus.
 */
export function showMenu(anchor, items, label) {
  const buttons = items.map((item) => {
    const button = h(`button.menu-item${item.danger ? ".danger" : ""}`, {
      type: "button", role: "menuitem", tabindex: "-1", dataset: { action: item.id },
    }, item.icon ? icon(item.icon) : null, h("span", item.label));
    button.addEventListener("click", () => {
      closePopover();
      item.action();
    });
    return button;
  });
  const menu = h("div.popover.message-menu", { role: "menu", "aria-label": label }, buttons);
  menu.addEventListener("keydown", (event) => keyboard(event, buttons));
  show(menu, anchor);
  buttons[0].focus({ preventScroll: true });
}

const PICKER_COLUMNS = 8;

/** Opens the emoji picker under `anchor`; `chosen` are the emoji already reacted with (shown pressed). */
export function showEmojiPicker(anchor, onPick, chosen = []) {
  const buttons = EMOJI.map((emoji) => {
    const pressed = chosen.includes(emoji);
    const button = h(`button.emoji-option${pressed ? ".chosen" : ""}`, {
      type: "button", tabindex: "-1", title: emoji, "aria-label": emoji, "aria-pressed": pressed ? "true" : "false",
      dataset: { emoji },
    }, emoji);
    button.addEventListener("click", () => {
      closePopover();
      onPick(emoji);
    });
    return button;
  });
  const picker = h("div.popover.emoji-picker", { role: "dialog", "aria-label": "Pick a reaction" },
    h("div.emoji-grid", buttons));
  const grid = picker.firstElementChild;
  // The grid is narrower on a phone: the arrow keys follow the columns it shows.
  picker.addEventListener("keydown", (event) => keyboard(event, buttons,
    getComputedStyle(grid).gridTemplateColumns.split(" ").length || PICKER_COLUMNS));
  show(picker, anchor);
  buttons[0].focus({ preventScroll: true });
}
