// Sign in: the email form, then six code boxes (typing moves along, paste fills them all, the last digit submits),
// with a resend countdown and plain-language errors.

import { api, ApiError } from "./api.js";
import { startSession } from "./session.js";
import { $, h, show, toast } from "./dom.js";
import { formatCountdown } from "./format.js";

const PENDING_KEY = "parley.login";
const CODE_LENGTH = 6;

let pending = readPending();
let countdownTimer = null;
let verifying = false;
let wired = false;

function readPending() {
  try {
    const value = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    if (value && typeof value.email === "string") return value;
  } catch { /* ignore */ }
  return null;
}

function savePending(value) {
  pending = value;
  try {
    if (value) sessionStorage.setItem(PENDING_KEY, JSON.stringify(value));
    else sessionStorage.removeItem(PENDING_KEY);
  } catch { /* ignore */ }
}

/** Shows the sign-in screen (the code step again when a code was requested in this tab less than 5 minutes ago). */
export function showLogin() {
  wire();
  show($("#auth"), true);
  if (pending && Date.now() - pending.requestedAt < 5 * 60_000) {
    showCodeStep();
  } else {
    savePending(null);
    showEmailStep();
  }
}

export function hideLogin() {
  show($("#auth"), false);
  clearInterval(countdownTimer);
}

function showEmailStep(message) {
  show($("#email-form"), true);
  show($("#code-form"), false);
  setError("#email-error", message || "");
  const input = $("#email-input");
  if (pending && !input.value) input.value = pending.email;
  requestAnimationFrame(() => input.focus());
}

function showCodeStep(info) {
  show($("#email-form"), false);
  show($("#code-form"), true);
  $("#code-email").textContent = pending.email;
  buildBoxes();
  setError("#code-error", info || "", info ? "info" : "error");
  startCountdown();
  requestAnimationFrame(() => boxes()[0].focus());
}

function setError(selector, message, kind = "error") {
  const element = $(selector);
  element.textContent = message;
  element.classList.toggle("info", kind === "info");
  show(element, Boolean(message));
}

function wire() {
  if (wired) return;
  wired = true;
  $("#email-form").addEventListener("submit", (event) => {
    event.preventDefault();
    requestCode($("#email-input").value.trim());
  });
  $("#email-input").addEventListener("input", () => setError("#email-error", ""));
  $("#code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitCode();
  });
  $("#code-back").addEventListener("click", () => {
    clearInterval(countdownTimer);
    showEmailStep();
  });
  $("#code-resend").addEventListener("click", () => requestCode(pending.email, { resend: true }));
}

async function requestCode(email, { resend = false } = {}) {
  const errorSelector = resend ? "#code-error" : "#email-error";
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/u.test(email)) {
    setError(errorSelector, "Enter a valid email address, like name@example.com.");
    return;
  }
  const button = resend ? $("#code-resend") : $("#email-submit");
  button.disabled = true;
  const label = button.textContent;
  if (!resend) button.textContent = "Sending…";
  try {
    const body = await api("POST", "/login", { body: { email }, auth: false });
    const seconds = Number(body && body.retryAfterSeconds) || 60;
    savePending({ email, requestedAt: Date.now(), resendAt: Date.now() + seconds * 1000 });
    if (resend) {
      toast("A new code is on its way.");
      clearBoxes();
      setError("#code-error", "");
      startCountdown();
      boxes()[0].focus();
    } else {
      showCodeStep();
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) {
      const wait = error.retryAfter || 60;
      const alreadySent = /moment ago/iu.test(error.message);
      if (!resend && alreadySent) {
        savePending({ email, requestedAt: Date.now(), resendAt: Date.now() + wait * 1000 });
        showCodeStep(`A code was sent to this address a moment ago. Enter it below, or ask for a new one in ${formatCountdown(wait)}.`);
      } else {
        if (resend) savePending({ ...pending, resendAt: Date.now() + wait * 1000 });
        setError(errorSelector, `${rateLimitMessage(error)} Try again in ${formatCountdown(wait)}.`);
        if (resend) startCountdown();
      }
    } else {
      setError(errorSelector, friendly(error));
    }
  } finally {
    button.textContent = label;
    if (!resend) button.disabled = false;
    else updateCountdown();
  }
}

function rateLimitMessage(error) {
  return error.message && error.message.endsWith(".") ? error.message.replace(/;.*$/u, ".") : "Too many requests.";
}

function friendly(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  switch (error.code) {
    case "invalid_email": return "That doesn't look like an email address. Check it and try again.";
    case "invalid_code": return "That code is not correct. Check the email we sent and try again.";
    case "code_expired": return "That code has expired. Ask for a new one below.";
    case "too_many_attempts": return "Too many wrong codes. Ask for a new code below.";
    default: return error.message;
  }
}

// ------------------------------------------------------------------------------------------------------------
// The six boxes

function boxes() {
  return [...$("#code-boxes").querySelectorAll("input")];
}

function buildBoxes() {
  const host = $("#code-boxes");
  for (const input of host.querySelectorAll("input")) input.remove();
  for (let index = 0; index < CODE_LENGTH; index += 1) {
    const input = h("input.code-box", {
      type: "text",
      inputmode: "numeric",
      autocomplete: index === 0 ? "one-time-code" : "off",
      pattern: "[0-9]*",
      "aria-label": `Digit ${index + 1} of ${CODE_LENGTH}`,
      dataset: { index: String(index) },
    });
    input.addEventListener("input", onBoxInput);
    input.addEventListener("keydown", onBoxKey);
    input.addEventListener("paste", onPaste);
    input.addEventListener("focus", () => input.select());
    host.append(input);
  }
}

function clearBoxes() {
  for (const box of boxes()) {
    box.value = "";
    box.classList.remove("invalid");
  }
}

function fill(startIndex, digits) {
  const all = boxes();
  let index = startIndex;
  for (const digit of digits) {
    if (index >= all.length) break;
    all[index].value = digit;
    index += 1;
  }
  all[Math.min(index, all.length - 1)].focus();
  for (const box of all) box.classList.remove("invalid");
  setError("#code-error", "");
  if (all.every((box) => box.value.length === 1)) submitCode();
}

function onBoxInput(event) {
  const box = event.target;
  const digits = box.value.replace(/\D/gu, "");
  box.value = "";
  if (!digits) return;
  // One digit typed, or a whole code autofilled into one box.
  fill(Number(box.dataset.index), digits.length > 1 ? digits : digits.slice(-1));
}

function onBoxKey(event) {
  const box = event.target;
  const index = Number(box.dataset.index);
  const all = boxes();
  if (event.key === "Backspace" && !box.value && index > 0) {
    event.preventDefault();
    all[index - 1].value = "";
    all[index - 1].focus();
  } else if (event.key === "ArrowLeft" && index > 0) {
    event.preventDefault();
    all[index - 1].focus();
  } else if (event.key === "ArrowRight" && index < all.length - 1) {
    event.preventDefault();
    all[index + 1].focus();
  } else if (event.key.length === 1 && /\d/u.test(event.key) && box.value) {
    // Typing over a filled box replaces its digit.
    box.value = "";
  }
}

function onPaste(event) {
  const text = (event.clipboardData || window.clipboardData).getData("text") || "";
  const digits = text.replace(/\D/gu, "");
  event.preventDefault();
  if (!digits) return;
  const start = digits.length >= CODE_LENGTH ? 0 : Number(event.target.dataset.index);
  fill(start, digits.slice(0, CODE_LENGTH));
}

async function submitCode() {
  if (verifying) return;
  const all = boxes();
  const code = all.map((box) => box.value).join("");
  if (code.length !== CODE_LENGTH) {
    setError("#code-error", "Enter all six digits of the code.");
    all.find((box) => !box.value)?.focus();
    return;
  }
  verifying = true;
  const button = $("#code-submit");
  button.disabled = true;
  button.textContent = "Signing in…";
  try {
    const body = await api("POST", "/verify", { body: { email: pending.email, otp: code }, auth: false });
    savePending(null);
    clearInterval(countdownTimer);
    startSession(body, "signin");
  } catch (error) {
    setError("#code-error", friendly(error));
    for (const box of all) box.classList.add("invalid");
    if (error instanceof ApiError && error.code === "invalid_code") {
      clearBoxes();
      for (const box of all) box.classList.add("invalid");
      all[0].focus();
    }
    if (error instanceof ApiError && (error.code === "too_many_attempts" || error.code === "code_expired")) {
      savePending({ ...pending, resendAt: Math.min(pending.resendAt || 0, Date.now()) });
      updateCountdown();
    }
  } finally {
    verifying = false;
    button.disabled = false;
    button.textContent = "Sign in";
  }
}

function startCountdown() {
  clearInterval(countdownTimer);
  updateCountdown();
  countdownTimer = setInterval(updateCountdown, 250);
}

function updateCountdown() {
  const button = $("#code-resend");
  if (!pending) return;
  const left = ((pending.resendAt || 0) - Date.now()) / 1000;
  if (left > 0) {
    button.disabled = true;
    button.textContent = `Resend code in ${formatCountdown(left)}`;
  } else {
    button.disabled = false;
    button.textContent = "Resend code";
    clearInterval(countdownTimer);
  }
}
