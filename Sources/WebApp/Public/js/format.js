// Dates, times, sizes and previews, in the browser's language.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const weekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long" });
const shortWeekdayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const longDateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "long", year: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

const DAY_MS = 86_400_000;

export function toDate(value) {
  return value instanceof Date ? value : new Date(value);
}

function startOfDay(date) {
  const copy = new Date(date);
  copy.setHours(0, 0, 0, 0);
  return copy;
}

/** Whole calendar days from `date` to today (0 today, 1 yesterday, …). */
export function daysAgo(date, now = new Date()) {
  return Math.round((startOfDay(now) - startOfDay(toDate(date))) / DAY_MS);
}

export function dayKey(value) {
  const date = toDate(value);
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function formatTime(value) {
  return timeFormat.format(toDate(value));
}

export function formatFull(value) {
  return fullFormat.format(toDate(value));
}

/** The label of a day separator: Today, Yesterday, a weekday this week, else the date. */
export function formatDay(value, now = new Date()) {
  const date = toDate(value);
  const days = daysAgo(date, now);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  if (days > 1 && days < 7) return weekdayFormat.format(date);
  if (date.getFullYear() === now.getFullYear()) return dateFormat.format(date);
  return longDateFormat.format(date);
}

/** The time in the chat list: 14:05 today, Yesterday, Mon, 3 Mar, 3 Mar 2023. */
export function formatListTime(value, now = new Date()) {
  const date = toDate(value);
  const days = daysAgo(date, now);
  if (days <= 0) return timeFormat.format(date);
  if (days === 1) return "Yesterday";
  if (days < 7) return shortWeekdayFormat.format(date);
  if (date.getFullYear() === now.getFullYear()) return dateFormat.format(date);
  return longDateFormat.format(date);
}

/** "last seen just now", "last seen today at 14:05", "last seen yesterday at 9:12", "last seen 3 Mar". */
export function formatLastSeen(value, now = new Date()) {
  const date = toDate(value);
  const seconds = (now - date) / 1000;
  if (seconds < 60) return "last seen just now";
  if (seconds < 3600) {
    const minutes = Math.floor(seconds / 60);
    return `last seen ${minutes} minute${minutes === 1 ? "" : "s"} ago`;
  }
  const days = daysAgo(date, now);
  if (days === 0) return `last seen today at ${formatTime(date)}`;
  if (days === 1) return `last seen yesterday at ${formatTime(date)}`;
  return `last seen ${formatListTime(date, now)}`;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function formatCountdown(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function formatBadge(count) {
  return count > 99 ? "99+" : String(count);
}

const MENTION = /<@([^<>\s]{1,100})>/gu;

/**
 * Splits message text into strings and mentions ({userId, raw}): `<@USER_ID>` is a mention when the server accepted it
 * (the id is in `accepted`), else it stays text.
 */
export function splitMentions(text, accepted = []) {
  const parts = [];
  let last = 0;
  const value = String(text || "");
  for (const match of value.matchAll(MENTION)) {
    if (!accepted.includes(match[1])) continue;
    if (match.index > last) parts.push(value.slice(last, match.index));
    parts.push({ userId: match[1], raw: match[0] });
    last = match.index + match[0].length;
  }
  if (last < value.length) parts.push(value.slice(last));
  return parts;
}

/** Message text with its mentions written as "@Name" (`nameOf(userId)`), for previews and quotes. */
export function textWithNames(message, nameOf) {
  if (!message || !message.text) return "";
  return splitMentions(message.text, message.mentions || [])
    .map((part) => (typeof part === "string" ? part : `@${nameOf(part.userId)}`)).join("");
}

/** One line of a message for the chat list and notifications: text, or "📷 Photo" / "📷 caption" for images. */
export function messagePreview(message, nameOf = () => "someone") {
  if (!message) return "";
  if (message.kind === "deleted") return "Message deleted";
  const text = textWithNames(message, nameOf).replace(/\s+/gu, " ").trim();
  if (message.kind === "image") return text ? `📷 ${text}` : "📷 Photo";
  if (message.kind === "file") return `📎 ${text || (message.file && message.file.name) || "File"}`;
  return text;
}
