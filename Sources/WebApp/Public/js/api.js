// The HTTP API: JSON requests with the access token, one silent refresh-and-retry on 401, errors as ApiError.

import { accessToken, refresh, SessionExpired, endSession } from "./session.js";

export class ApiError extends Error {
  /**
   * @param {number} status   HTTP status, 0 when the server could not be reached
   * @param {string} code     the server's snake_case code ("network" when unreachable)
   * @param {string} message  a sentence to show
   * @param {number|null} retryAfter  seconds, from Retry-After on 429
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

const NETWORK_MESSAGE = "Can't reach Parley. Check your connection and try again.";

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = `The server answered ${response.status}.`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch { /* not JSON */ }
  if (response.status >= 500) message = "Something went wrong on the server. Please try again.";
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  return new ApiError(response.status, code, message, Number.isFinite(retry) ? retry : null);
}

/**
 * Calls the API. `auth: false` for login and verify. Resolves with the parsed body (null for 204).
 * @returns {Promise<any>}
 */
export async function api(method, path, { body, auth = true, signal } = {}) {
  const attempt = async (token) => {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    try {
      return await fetch(`/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(0, "network", NETWORK_MESSAGE);
    }
  };

  let response;
  if (auth) {
    let token;
    try {
      token = await accessToken();
    } catch (error) {
      throw asApiError(error);
    }
    response = await attempt(token);
    if (response.status === 401) {
      try {
        await refresh();
        response = await attempt(await accessToken());
      } catch (error) {
        throw asApiError(error);
      }
      if (response.status === 401) {
        endSession();
        throw new ApiError(401, "unauthorized", new SessionExpired().message);
      }
    }
  } else {
    response = await attempt(null);
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

function asApiError(error) {
  if (error instanceof ApiError) return error;
  if (error instanceof SessionExpired) return new ApiError(401, "unauthorized", error.message);
  if (error && error.network) return new ApiError(0, "network", NETWORK_MESSAGE);
  return new ApiError(0, "network", error && error.message ? error.message : NETWORK_MESSAGE);
}

/**
 * Sends a message with an image or any other file as multipart/form-data (fields text, clientMessageId, replyToSeq?,
 * and the file as `image`, or as `file` when `asFile`), reporting upload progress as a fraction 0…1. Resolves with
 * {message}. `handle.abort()` cancels.
 */
export function uploadMessage(chatId, { text, clientMessageId, file, replyToSeq, asFile }, onProgress, handle = {}) {
  return uploadForm(`/chats/${encodeURIComponent(chatId)}/messages`, () => {
    const form = new FormData();
    if (text) form.append("text", text);
    form.append("clientMessageId", clientMessageId);
    if (Number.isInteger(replyToSeq)) form.append("replyToSeq", String(replyToSeq));
    form.append(asFile ? "file" : "image", file, file.name || (asFile ? "file" : "image"));
    return form;
  }, onProgress, handle, {
    413: asFile ? "That file is too large to send." : "That image is too large to send.",
    415: "That file is not an image Parley can send (JPEG, PNG, GIF or WebP).",
  });
}

/**
 * Uploads an image of one's own (an avatar) to POST /files, reporting progress as a fraction 0…1.
 * Resolves with {file: {id, url, contentType, size, width, height}}. `handle.abort()` cancels.
 */
export function uploadFile(file, onProgress, handle = {}) {
  return uploadForm("/files", () => {
    const form = new FormData();
    form.append("image", file, file.name || "image");
    return form;
  }, onProgress, handle, {
    413: "That image is too large (10 MB at most).",
    415: "That file is not an image Parley can use (JPEG, PNG, GIF or WebP).",
  });
}

/** POSTs multipart/form-data with XHR (for upload progress), with the token and one refresh-and-retry on 401. */
function uploadForm(path, makeForm, onProgress, handle, messages) {
  const send = (token) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    handle.abort = () => xhr.abort();
    xhr.open("POST", `/api/v1${path}`);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new ApiError(0, "network", NETWORK_MESSAGE));
    xhr.ontimeout = () => reject(new ApiError(0, "network", NETWORK_MESSAGE));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "The upload was cancelled."));
    xhr.send(makeForm());
  });

  const parse = (xhr) => {
    let body = null;
    try { body = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { /* not JSON */ }
    if (xhr.status >= 200 && xhr.status < 300) return body;
    const error = body && body.error ? body.error : {};
    let message = messages[xhr.status] || error.message || `The server answered ${xhr.status}.`;
    if (xhr.status >= 500) message = "Something went wrong on the server. Please try again.";
    const retry = Number.parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
    throw new ApiError(xhr.status, error.code || `http_${xhr.status}`, message, Number.isFinite(retry) ? retry : null);
  };

  return (async () => {
    let token;
    try { token = await accessToken(); } catch (error) { throw asApiError(error); }
    let xhr = await send(token);
    if (xhr.status === 401) {
      try {
        await refresh();
        xhr = await send(await accessToken());
      } catch (error) {
        throw asApiError(error);
      }
    }
    return parse(xhr);
  })();
}
