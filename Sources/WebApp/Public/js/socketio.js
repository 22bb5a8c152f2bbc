// A small Socket.IO v4 client (Engine.IO protocol 4, Socket.IO protocol 5) over a WebSocket, namespace "/".
//
// What it does on the wire:
//   open   /socket.io/?EIO=4&transport=websocket
//   ← 0{"sid","upgrades","pingInterval","pingTimeout","maxPayload"}   Engine.IO open
//   → 40{"token":"…"}                                                Socket.IO CONNECT with auth
//   ← 40{"sid":"…"}   or   ← 44{"message":"unauthorized"}            CONNECT answer / CONNECT_ERROR
//   ← 2  → 3                                                         ping / pong (the server pings)
//   → 42["event",data]   → 42<id>["event",data]   ← 43<id>[answer]  events and acks (ids from 0)
//   ← 42["event",data]   ← 42<id>["event",data] → 43<id>[…]          server events (acked when asked)
//   → 41, close                                                      disconnect
// Reconnects by itself with exponential backoff and jitter; tells its owner about every state change.

const ENGINE = { OPEN: "0", CLOSE: "1", PING: "2", PONG: "3", MESSAGE: "4", UPGRADE: "5", NOOP: "6" };
const SOCKET = { CONNECT: "0", DISCONNECT: "1", EVENT: "2", ACK: "3", CONNECT_ERROR: "4", BINARY_EVENT: "5", BINARY_ACK: "6" };

export class SocketError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "SocketError";
    this.code = code;
  }
}

/** Splits a Socket.IO packet (the part after the Engine.IO "4") into {type, nsp, id, data}. Throws on garbage. */
export function decodeSocketPacket(text) {
  const type = text.charAt(0);
  if (!/^[0-6]$/.test(type)) throw new SocketError("parse_error", `unknown packet type ${JSON.stringify(type)}`);
  let index = 1;
  let nsp = "/";
  if (text.charAt(index) === "/") {
    const comma = text.indexOf(",", index);
    nsp = comma === -1 ? text.slice(index) : text.slice(index, comma);
    index = comma === -1 ? text.length : comma + 1;
  }
  let id = null;
  const digits = /^\d+/.exec(text.slice(index));
  if (digits && (type === SOCKET.EVENT || type === SOCKET.ACK)) {
    id = Number(digits[0]);
    index += digits[0].length;
  }
  const rest = text.slice(index);
  let data;
  if (rest.length > 0) data = JSON.parse(rest);
  return { type, nsp, id, data };
}

/** The text of an EVENT or ACK packet for namespace "/". */
export function encodeSocketPacket(type, data, id = null) {
  return ENGINE.MESSAGE + type + (id === null ? "" : String(id)) + (data === undefined ? "" : JSON.stringify(data));
}

export class SocketIOClient {
  /**
   * @param {object} options
   * @param {string} [options.url]      base http(s) URL of the server; defaults to this page's origin
   * @param {string} [options.path]     "/socket.io/"
   * @param {() => (object|Promise<object>)} [options.auth]  CONNECT data, asked before every connection attempt
   * @param {(state: string, detail: object) => void} [options.onState]  "connecting" | "connected" | "reconnecting" | "closed"
   * @param {(error: object) => (void|Promise<void>)} [options.onConnectError]  a refused CONNECT (44), awaited before retrying
   * @param {number} [options.reconnectDelay]     first retry delay in ms (500)
   * @param {number} [options.reconnectDelayMax]  largest retry delay in ms (8000)
   * @param {number} [options.connectTimeout]     give up on an attempt after this many ms (10000)
   */
  constructor(options = {}) {
    this.url = options.url || window.location.origin;
    this.path = options.path || "/socket.io/";
    this.auth = options.auth || (() => ({}));
    this.onState = options.onState || (() => {});
    this.onConnectError = options.onConnectError || (() => {});
    this.reconnectDelay = options.reconnectDelay ?? 500;
    this.reconnectDelayMax = options.reconnectDelayMax ?? 8000;
    this.connectTimeout = options.connectTimeout ?? 10000;
    this.WebSocketImpl = options.WebSocket || window.WebSocket;
    this.debug = Boolean(options.debug);

    this.state = "idle";
    this.id = null;
    this.attempts = 0;
    this.listeners = new Map();
    this.pendingAcks = new Map();
    this.nextAckId = 0;
    this.ws = null;
    this.pingTimer = null;
    this.connectTimer = null;
    this.reconnectTimer = null;
    this.nextRetryAt = null;
    this.generation = 0;
    this.lastError = null;
  }

  get connected() {
    return this.state === "connected";
  }

  /** Registers a handler for a server event (or "connect" / "disconnect"); returns a function that removes it. */
  on(name, handler) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(handler);
    return () => this.listeners.get(name)?.delete(handler);
  }

  /** Starts connecting (no-op when already connecting or connected). */
  connect() {
    if (this.state === "connecting" || this.state === "connected") return;
    this.clearReconnect();
    this.open();
  }

  /** Closes for good: no more reconnects until connect() is called again. */
  close() {
    this.clearReconnect();
    if (this.ws && this.state === "connected") {
      try { this.ws.send(ENGINE.MESSAGE + SOCKET.DISCONNECT); } catch { /* already closing */ }
    }
    this.teardown(new SocketError("closed", "closed by the client"));
    this.setState("closed", {});
  }

  /** Drops the current connection (if any) and tries again at once: for "Retry now" and the browser coming online. */
  reconnectNow() {
    if (this.state === "closed" || this.state === "idle") return this.connect();
    if (this.state === "connected" || this.state === "connecting") return;
    this.clearReconnect();
    this.open();
  }

  /** Treats the connection as lost (the browser says it is offline) and starts the retry cycle. */
  dropConnection(reason = "transport close") {
    if (this.state !== "connected" && this.state !== "connecting") return;
    this.lost(reason);
  }

  /** Sends an event without waiting for an answer; returns false when not connected (nothing is sent). */
  emit(name, ...args) {
    if (!this.connected) return false;
    return this.sendRaw(encodeSocketPacket(SOCKET.EVENT, [name, ...args]));
  }

  /** Sends an event and resolves with the server's first ack argument; rejects on timeout or disconnect. */
  request(name, data, timeoutMs = 10000) {
    if (!this.connected) return Promise.reject(new SocketError("not_connected", "not connected"));
    const id = this.nextAckId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject(new SocketError("timeout", `no answer to ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingAcks.set(id, {
        resolve: (args) => { clearTimeout(timer); resolve(args[0]); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      });
      if (!this.sendRaw(encodeSocketPacket(SOCKET.EVENT, [name, data], id))) {
        this.pendingAcks.delete(id);
        clearTimeout(timer);
        reject(new SocketError("not_connected", "not connected"));
      }
    });
  }

  // ----------------------------------------------------------------------------------------------------------
  // Internals

  endpoint() {
    const base = new URL(this.path, this.url);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    base.search = "?EIO=4&transport=websocket";
    return base.toString();
  }

  setState(state, detail) {
    const changed = this.state !== state;
    this.state = state;
    if (changed || state === "reconnecting") this.onState(state, detail);
  }

  fire(name, ...args) {
    const handlers = this.listeners.get(name);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        handler(...args);
      } catch (error) {
        console.error(`socket handler for ${name} failed`, error);
      }
    }
  }

  open() {
    this.teardown(null);
    const generation = ++this.generation;
    this.setState("connecting", { attempt: this.attempts });
    let ws;
    try {
      ws = new this.WebSocketImpl(this.endpoint());
    } catch (error) {
      this.lastError = error;
      this.scheduleReconnect("open failed");
      return;
    }
    this.ws = ws;
    this.connectTimer = setTimeout(() => {
      if (generation === this.generation && this.state === "connecting") this.lost("connect timeout");
    }, this.connectTimeout);
    ws.onmessage = (event) => {
      if (generation !== this.generation) return;
      if (typeof event.data !== "string") return; // binary frames are not used by this app
      if (this.debug) console.info("socket <", event.data);
      this.onEnginePacket(event.data, generation);
    };
    ws.onclose = () => {
      if (generation === this.generation) this.lost("transport close");
    };
    ws.onerror = () => {
      if (generation === this.generation) this.lastError = new SocketError("transport_error", "websocket error");
    };
  }

  onEnginePacket(text, generation) {
    const type = text.charAt(0);
    const body = text.slice(1);
    switch (type) {
      case ENGINE.OPEN: {
        let handshake;
        try {
          handshake = JSON.parse(body);
        } catch {
          this.lost("parse error");
          return;
        }
        this.pingInterval = Number(handshake.pingInterval) || 25000;
        this.pingTimeout = Number(handshake.pingTimeout) || 20000;
        this.armPingTimer();
        Promise.resolve()
          .then(() => this.auth())
          .then((data) => {
            if (generation !== this.generation) return;
            this.sendRaw(ENGINE.MESSAGE + SOCKET.CONNECT + (data && Object.keys(data).length ? JSON.stringify(data) : ""));
          })
          .catch((error) => {
            if (generation !== this.generation) return;
            this.lastError = error;
            this.lost("auth unavailable");
          });
        break;
      }
      case ENGINE.PING:
        this.armPingTimer();
        this.sendRaw(ENGINE.PONG + body);
        break;
      case ENGINE.CLOSE:
        this.lost("transport close");
        break;
      case ENGINE.MESSAGE:
        this.onSocketPacket(body, generation);
        break;
      default:
        break; // noop, pong, upgrade: nothing to do over a plain WebSocket
    }
  }

  onSocketPacket(text, generation) {
    let packet;
    try {
      packet = decodeSocketPacket(text);
    } catch (error) {
      console.warn("dropping a malformed Socket.IO packet", error);
      return;
    }
    if (packet.nsp !== "/") return;
    switch (packet.type) {
      case SOCKET.CONNECT: {
        clearTimeout(this.connectTimer);
        this.id = packet.data && packet.data.sid ? packet.data.sid : null;
        const reconnected = this.everConnected === true;
        this.everConnected = true;
        this.attempts = 0;
        this.lastError = null;
        this.setState("connected", { reconnected });
        this.fire("connect", { reconnected });
        break;
      }
      case SOCKET.CONNECT_ERROR: {
        clearTimeout(this.connectTimer);
        const error = packet.data && typeof packet.data === "object" ? packet.data : { message: String(packet.data) };
        this.lastError = new SocketError("connect_error", error.message || "connection refused");
        this.lastError.data = error;
        // The server closes the Engine.IO session itself; stop listening to this one, ask the owner, then retry.
        this.generation++;
        this.teardown(new SocketError("connect_error", error.message));
        this.setState("reconnecting", { error, delay: 0 });
        Promise.resolve()
          .then(() => this.onConnectError(error))
          .catch(() => {})
          .then(() => {
            if (this.state !== "closed") this.scheduleReconnect("connect error");
          });
        break;
      }
      case SOCKET.EVENT: {
        if (!Array.isArray(packet.data) || typeof packet.data[0] !== "string") return;
        const [name, ...args] = packet.data;
        if (packet.id !== null) {
          const id = packet.id;
          let answered = false;
          args.push((...answer) => {
            if (answered || generation !== this.generation) return;
            answered = true;
            this.sendRaw(encodeSocketPacket(SOCKET.ACK, answer, id));
          });
        }
        this.fire(name, ...args);
        break;
      }
      case SOCKET.ACK: {
        const pending = this.pendingAcks.get(packet.id);
        if (!pending) return;
        this.pendingAcks.delete(packet.id);
        pending.resolve(Array.isArray(packet.data) ? packet.data : [packet.data]);
        break;
      }
      case SOCKET.DISCONNECT:
        // The server ended this socket (for instance an expired token): reconnect with fresh auth.
        this.lost("io server disconnect");
        break;
      default:
        break; // binary packets are not used by Parley
    }
  }

  armPingTimer() {
    clearTimeout(this.pingTimer);
    const generation = this.generation;
    this.pingTimer = setTimeout(() => {
      if (generation === this.generation) this.lost("ping timeout");
    }, this.pingInterval + this.pingTimeout);
  }

  sendRaw(text) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    if (this.debug) console.info("socket >", text);
    try {
      this.ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the WebSocket and fails every pending ack (with `error`, when given). */
  teardown(error) {
    clearTimeout(this.pingTimer);
    clearTimeout(this.connectTimer);
    this.pingTimer = null;
    this.connectTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      try { ws.close(); } catch { /* ignore */ }
    }
    if (this.pendingAcks.size > 0) {
      const failure = error || new SocketError("disconnected", "the connection was lost");
      const pending = [...this.pendingAcks.values()];
      this.pendingAcks.clear();
      for (const entry of pending) entry.reject(failure);
    }
  }

  lost(reason) {
    if (this.state === "closed") return;
    const wasConnected = this.state === "connected";
    this.generation++;
    this.teardown(new SocketError("disconnected", reason));
    if (wasConnected) this.fire("disconnect", reason);
    this.scheduleReconnect(reason);
  }

  scheduleReconnect(reason) {
    this.clearReconnect();
    const base = Math.min(this.reconnectDelayMax, this.reconnectDelay * 2 ** Math.min(this.attempts, 10));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempts += 1;
    this.nextRetryAt = Date.now() + delay;
    this.setState("reconnecting", { reason, delay, attempt: this.attempts, error: this.lastError });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.nextRetryAt = null;
      this.open();
    }, delay);
  }

  clearReconnect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.nextRetryAt = null;
  }
}
