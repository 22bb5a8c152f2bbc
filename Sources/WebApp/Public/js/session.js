// The signed-in session: tokens kept in localStorage so a reload stays signed in, refreshed silently before the
// access token expires. Refresh tokens rotate (a reused one revokes the whole family), so tabs coordinate: one
// refresh at a time (Web Locks when available), and a tab adopts tokens another tab already rotated.

const STORAGE_KEY = "parley.session";
const REFRESH_MARGIN_MS = 60_000; // refresh this long before expiry
const LOCK_NAME = "parley-token-refresh";

let session = read();
let refreshing = null;
let timer = null;
const listeners = new Set();

function read() {
  try {
    const value = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    if (value && typeof value.accessToken === "string" && typeof value.refreshToken === "string" && value.user) return value;
  } catch { /* corrupt or unavailable storage */ }
  return null;
}

function write(value) {
  try {
    if (value) localStorage.setItem(STORAGE_KEY, JSON.stringify(value));
    else localStorage.removeItem(STORAGE_KEY);
  } catch { /* private mode: the session lives in memory only */ }
}

function notify(reason) {
  for (const listener of [...listeners]) listener(session, reason);
}

function schedule() {
  clearTimeout(timer);
  timer = null;
  if (!session) return;
  const wait = Math.max(1000, session.expiresAt - Date.now() - REFRESH_MARGIN_MS);
  timer = setTimeout(() => {
    refresh().catch(() => {
      // Offline or the server is down: try again soon; requests refresh on demand too.
      if (session) timer = setTimeout(schedule, 15_000);
    });
  }, Math.min(wait, 2 ** 31 - 1));
}

/** Listens for session changes: (session|null, reason) with reason "signin" | "refresh" | "update" | "signout". */
export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function currentSession() {
  return session;
}

export function currentUser() {
  return session ? session.user : null;
}

/** Stores the answer of /verify or /token/refresh. */
export function startSession(body, reason = "signin") {
  session = {
    accessToken: body.accessToken,
    refreshToken: body.refreshToken,
    expiresAt: Date.now() + (Number(body.expiresIn) || 900) * 1000,
    user: body.user,
  };
  write(session);
  schedule();
  notify(reason);
}

export function updateUser(user) {
  if (!session) return;
  session = { ...session, user };
  write(session);
  notify("update");
}

/** Forgets the session here (and, through the storage event, in the other tabs). */
export function endSession() {
  clearTimeout(timer);
  timer = null;
  const had = session !== null;
  session = null;
  write(null);
  if (had) notify("signout");
}

export class SessionExpired extends Error {
  constructor(message = "Your session has ended. Please sign in again.") {
    super(message);
    this.name = "SessionExpired";
  }
}

async function withLock(work) {
  if (navigator.locks && typeof navigator.locks.request === "function") {
    return navigator.locks.request(LOCK_NAME, work);
  }
  return work();
}

/**
 * Rotates the tokens (once, however many callers ask at the same time). Throws SessionExpired when the server
 * refuses the refresh token (the session is then ended), or a network error that leaves the session as it is.
 */
export function refresh() {
  if (refreshing) return refreshing;
  const started = session;
  if (!started) return Promise.reject(new SessionExpired());
  refreshing = withLock(async () => {
    // Another tab may have rotated the token while this one waited for the lock.
    const stored = read();
    if (stored && stored.refreshToken !== started.refreshToken && stored.expiresAt - Date.now() > REFRESH_MARGIN_MS) {
      session = stored;
      schedule();
      notify("refresh");
      return session;
    }
    const current = stored || started;
    let response;
    try {
      response = await fetch("/api/v1/token/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refreshToken: current.refreshToken }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      throw Object.assign(new Error("Can't reach Parley."), { network: true, cause: error });
    }
    if (response.status === 401 || response.status === 400) {
      endSession();
      throw new SessionExpired();
    }
    if (!response.ok) throw Object.assign(new Error(`refresh failed with ${response.status}`), { status: response.status });
    const body = await response.json();
    startSession(body, "refresh");
    return session;
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** An access token valid for at least another 30 s, refreshing first when needed. */
export async function accessToken() {
  if (!session) throw new SessionExpired();
  if (session.expiresAt - Date.now() < 30_000) await refresh();
  if (!session) throw new SessionExpired();
  return session.accessToken;
}

// Other tabs: adopt rotated tokens, follow sign-in and sign-out.
window.addEventListener("storage", (event) => {
  if (event.key !== STORAGE_KEY && event.key !== null) return;
  const stored = read();
  if (!stored && session) {
    session = null;
    clearTimeout(timer);
    notify("signout");
  } else if (stored && (!session || stored.refreshToken !== session.refreshToken || stored.user.id !== session.user.id)) {
    const reason = !session || stored.user.id !== session.user.id ? "signin" : "refresh";
    session = stored;
    schedule();
    notify(reason);
  } else if (stored && session && JSON.stringify(stored.user) !== JSON.stringify(session.user)) {
    session = stored;
    notify("update");
  }
});

// A laptop waking from sleep may have skipped the timer.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && session && session.expiresAt - Date.now() < REFRESH_MARGIN_MS) {
    refresh().catch(() => {});
  }
});

if (session) schedule();
