// DOM helpers. User data only ever reaches the page through textContent, attributes set one by one, or URLs that
// were parsed and checked: never through innerHTML.

/**
 * Creates an element: h("div.card#id", {attrs…, onclick…, dataset: {…}}, children…).
 * Strings and numbers become text nodes; null/false children are skipped.
 */
export function h(tag, props, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const element = document.createElement(name || "div");
  for (const part of rest) {
    if (part.startsWith(".")) element.classList.add(part.slice(1));
    else if (part.startsWith("#")) element.id = part.slice(1);
  }
  if (props && (typeof props !== "object" || props instanceof Node || Array.isArray(props))) {
    children.unshift(props);
    props = null;
  }
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") element.className = value;
      else if (key === "dataset") Object.assign(element.dataset, value);
      else if (key === "text") element.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
      else if (key in element && typeof value !== "string") element[key] = value;
      else element.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// ------------------------------------------------------------------------------------------------------------
// Icons: inline SVG built from path data (no markup strings).

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  send: "M3.4 20.4 21 12 3.4 3.6 3.4 10.1 16 12 3.4 13.9z",
  attach: "M16.5 6.5v10.1a4.5 4.5 0 0 1-9 0V5.8a3 3 0 0 1 6 0v9.9a1.5 1.5 0 0 1-3 0V6.5H9v9.2a3 3 0 0 0 6 0V5.8a4.5 4.5 0 0 0-9 0v10.8a6 6 0 0 0 12 0V6.5z",
  back: "M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z",
  close: "M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z",
  group: "M16 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm-8 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm0 2c-2.3 0-7 1.2-7 3.5V19h14v-2.5C15 14.2 10.3 13 8 13zm8 0c-.3 0-.6 0-1 .1 1.2.8 2 2 2 3.4V19h6v-2.5c0-2.3-4.7-3.5-7-3.5z",
  newChat: "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zm-3 9h-4v4h-2v-4H7V9h4V5h2v4h4z",
  down: "M12 16.6 5.4 10 6.8 8.6 12 13.8l5.2-5.2 1.4 1.4z",
  check: "M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z",
  checks: "M18 7l-1.4-1.4-6.3 6.3 1.4 1.4L18 7zm4.2-1.4L11.7 16.2 7.5 12l-1.4 1.4 5.6 5.6 12-12-1.5-1.4zM.4 13.4 6 19l1.4-1.4L1.8 12 .4 13.4z",
  clock: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm.5-13H11v6l5.2 3.2.8-1.3-4.5-2.7z",
  error: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-2h2zm0-4h-2V7h2z",
  search: "M15.5 14h-.79l-.28-.27A6.47 6.47 0 0 0 16 9.5 6.5 6.5 0 1 0 9.5 16c1.61 0 3.09-.59 4.23-1.57l.27.28v.79l5 4.99L20.49 19l-4.99-5zm-6 0C7.01 14 5 11.99 5 9.5S7.01 5 9.5 5 14 7.01 14 9.5 11.99 14 9.5 14z",
  image: "M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5z",
  retry: "M17.7 6.3A8 8 0 1 0 19.7 14h-2.1a6 6 0 1 1-1.4-6.2L13 11h7V4z",
  reply: "M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z",
  more: "M6 10a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm6 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm6 0a2 2 0 1 0 0 4 2 2 0 0 0 0-4z",
  edit: "M3 17.3V21h3.8L17.8 9.9l-3.7-3.7zM20.7 7a1 1 0 0 0 0-1.4l-2.3-2.3a1 1 0 0 0-1.4 0l-1.8 1.8 3.7 3.7z",
  trash: "M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6zM19 4h-3.5l-1-1h-5l-1 1H5v2h14z",
  smile: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zm-3.5-9a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm7 0a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zM12 17.5c2.3 0 4.3-1.5 5.1-3.5H6.9c.8 2 2.8 3.5 5.1 3.5z",
};

export function icon(name, label) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("focusable", "false");
  if (label) {
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
  } else {
    svg.setAttribute("aria-hidden", "true");
  }
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name] || "");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

// ------------------------------------------------------------------------------------------------------------
// Avatars: the picture when there is one, else initials on a colour picked from the id.

const AVATAR_HUES = [211, 262, 330, 14, 36, 150, 190, 280, 0, 120];

export function initials(name) {
  const words = String(name || "?").trim().split(/[\s._-]+/u).filter(Boolean);
  const letters = words.length >= 2 ? [words[0], words[words.length - 1]] : [words[0] || "?"];
  return letters.map((word) => Array.from(word)[0] || "").join("").toUpperCase() || "?";
}

export function hueFor(id) {
  let hash = 0;
  for (const char of String(id || "")) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return AVATAR_HUES[hash % AVATAR_HUES.length];
}

// Pictures that loaded (shown at once on the next render, no flash of initials) or failed (not asked for again).
const loadedPictures = new Set();
const failedPictures = new Map(); // url → when it failed; tried again after a minute
const RETRY_FAILED_MS = 60_000;

/** Notes a picture that loaded elsewhere (a preload), so avatars show it without a flash of initials. */
export function notePictureLoaded(url) {
  if (url) loadedPictures.add(url);
}

/** Whether `url` can go into <img src>: same-origin paths, http(s), and blob: previews. */
export function isPictureUrl(url) {
  return typeof url === "string" && /^(\/(?!\/)|https?:|blob:)/u.test(url);
}

/**
 * An avatar for a user or chat: {id, name, avatarUrl?}; `group` shows the group glyph when there is no picture.
 * The picture covers the initials once it has loaded; when it fails, the initials stay.
 */
export function avatar({ id, name, avatarUrl, group = false, online = false, size = "md", alt }) {
  const element = h(`span.avatar.avatar-${size}`, { "aria-hidden": "true" });
  element.style.setProperty("--avatar-hue", String(hueFor(id)));
  element.append(h("span.avatar-initials", group ? icon("group") : initials(name)));
  if (isPictureUrl(avatarUrl) && !(Date.now() - (failedPictures.get(avatarUrl) || 0) < RETRY_FAILED_MS)) {
    const img = h("img.avatar-image", { alt: alt || name || "", decoding: "async", draggable: "false" });
    if (loadedPictures.has(avatarUrl)) element.classList.add("has-image");
    img.addEventListener("load", () => {
      if (img.naturalWidth === 0) return;
      loadedPictures.add(avatarUrl);
      element.classList.add("has-image");
    });
    img.addEventListener("error", () => {
      if (!avatarUrl.startsWith("blob:")) failedPictures.set(avatarUrl, Date.now());
      loadedPictures.delete(avatarUrl);
      element.classList.remove("has-image");
      img.remove();
    });
    img.src = avatarUrl;
    element.append(img);
  }
  if (online) element.append(h("span.online-dot", { title: "Online" }));
  return element;
}

// ------------------------------------------------------------------------------------------------------------
// Text with links

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`\u00a0\u2000-\u200b\u3000]+/giu;
const TRAILING_CHARS = ".,;:!?'\"»”’>";
const CLOSERS = { ")": "(", "]": "[", "}": "{" };

/** Splits text into ["text", {url, text}, …]: http(s) URLs only, trailing punctuation left out. */
export function findLinks(text) {
  const parts = [];
  let last = 0;
  for (const match of String(text).matchAll(URL_PATTERN)) {
    let candidate = match[0];
    // Leave out trailing punctuation, but keep a closing bracket the URL itself opened (…/Foo_(bar)).
    while (candidate.length > 0) {
      const lastChar = candidate.charAt(candidate.length - 1);
      const pair = CLOSERS[lastChar];
      if (TRAILING_CHARS.includes(lastChar) || (pair && count(candidate, pair) < count(candidate, lastChar))) {
        candidate = candidate.slice(0, -1);
      } else {
        break;
      }
    }
    let url;
    try {
      url = new URL(candidate);
    } catch {
      continue;
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) continue;
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push({ url: url.href, text: candidate });
    last = match.index + candidate.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function count(text, char) {
  return text.split(char).length - 1;
}

/** A fragment of text nodes and safe links for message text. */
export function richText(text) {
  const fragment = document.createDocumentFragment();
  for (const part of findLinks(text)) {
    if (typeof part === "string") {
      fragment.append(document.createTextNode(part));
    } else {
      const link = document.createElement("a");
      link.href = part.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      link.textContent = part.text;
      fragment.append(link);
    }
  }
  return fragment;
}

// ------------------------------------------------------------------------------------------------------------

export function show(element, visible = true) {
  element.hidden = !visible;
}

/** A short message at the bottom of the screen. */
export function toast(message, { kind = "info", timeout = 4000 } = {}) {
  const host = document.getElementById("toasts");
  if (!host) return;
  const item = h(`div.toast.toast-${kind}`, { role: kind === "error" ? "alert" : "status", dataset: { created: String(Date.now()) } }, message);
  host.append(item);
  setTimeout(() => item.classList.add("leaving"), timeout);
  setTimeout(() => item.remove(), timeout + 400);
}

/** Calls `fn` at most once per `wait` ms (leading edge), and once more at the end of a burst. */
export function debounce(fn, wait) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}

export function uuid() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
