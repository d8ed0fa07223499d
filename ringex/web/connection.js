// The WebSocket: config fetch, connect and reconnect with back-off, the
// connection state in the header, and requests matched to replies by req_id.
import { state } from "./state.js";
import { $, notice } from "./dom.js";

const RETRY_MAX_MS = 10000;

let ws = null;
let nextReqId = 1;
const pending = new Map();     // req_id -> resolve(reply)
let retryMs = 500;
// set by app.js: open(), message(m) for every message, closed()
let handlers = { open() {}, message() {}, closed() {} };

export function setHandlers(h) {
  handlers = h;
}

// the socket in use, so a late retry can tell that its connection has gone
export const socket = () => ws;

function setConn(s, text) {
  state.conn = s;
  $("conn").dataset.state = s;
  $("conn").textContent = text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function loadConfig() {
  for (;;) {
    try {
      const r = await fetch("config.json", { cache: "no-store" });
      if (r.ok) return await r.json();
      setConn("starting", "exchange starting");
    } catch {
      setConn("closed", "no HTTP server");
    }
    await sleep(1000);
  }
}

export function connect() {
  const c = state.config;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const sock = new WebSocket(`${scheme}://${location.hostname}:${c.ws_port}${c.ws_path}`);
  ws = sock;
  setConn("connecting", "connecting");
  sock.onopen = () => {
    retryMs = 500;
    setConn("open", "live");
    notice("");
    handlers.open();
  };
  sock.onmessage = (e) => receive(JSON.parse(e.data));
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    failPending();
    handlers.closed();
    const wait = retryMs;
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    setConn("closed", `disconnected${e.reason ? ` (${e.reason})` : ""}; retrying in ${
      Math.round(wait / 100) / 10} s`);
    setTimeout(connect, wait);
  };
}

// Drop the connection and open a fresh one at once (a connection logs in once).
export function reconnect() {
  if (!ws) return;
  const old = ws;
  ws = null;
  old.onclose = null;
  old.close(1000, "log out");
  failPending();
  connect();
}

function failPending() {
  for (const resolve of pending.values()) {
    resolve({ type: "error", code: "closed", message: "the connection closed" });
  }
  pending.clear();
}

// Handle a message, then settle the request it replies to (the handlers see it first).
export function receive(m) {
  handlers.message(m);
  if (m.req_id != null && pending.has(m.req_id)) {
    const resolve = pending.get(m.req_id);
    pending.delete(m.req_id);
    resolve(m);
  }
}

// Send a request; resolves with its direct reply (an error or reject included),
// never rejects.
export function request(msg) {
  return new Promise((resolve) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      resolve({ type: "error", code: "not_connected", message: "not connected to the exchange" });
      return;
    }
    const id = nextReqId++;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ ...msg, req_id: id }));
  });
}
