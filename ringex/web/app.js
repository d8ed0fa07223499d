// The ringex web view: market data from the public WebSocket channels (book,
// trades) and, after a login with an API key, the account's balances and orders.
// The protocol is docs/protocol.md; this page is described in docs/web.md.
import { Book, Candles, decimalsOf, formatFixed, nowMs, parseFixed } from "./model.js";
import { drawDepth } from "./depth.js";

const LADDER_DEPTH = 15;       // levels shown a side in the ladder
const DEPTH_LEVELS = 60;       // levels a side in the depth chart
const TAPE_ROWS = 40;
const ACTIVITY_ROWS = 8;
const TRADES_KEPT = 5000;      // per symbol, to rebuild candles when the interval changes
const RETRY_MAX_MS = 10000;

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  meta: {},                    // symbol -> {symbol, base, quote, tick, lot}
  symbol: null,                // the one shown
  conn: "connecting",
  books: {},                   // symbol -> Book
  trades: {},                  // symbol -> [{seq, price, qty, side, t}], oldest first
  tradeSeq: {},                // symbol -> seq of the last trade (gap counting only)
  candles: {},                 // symbol -> Candles
  interval: 60,
  apiKey: null,                // kept in memory only, to log in again after a reconnect
  account: null,
  admin: false,
  balances: {},
  orders: new Map(),           // order_id -> {symbol, order_id, client_order_id, side, price, qty}
  counters: { bookGaps: 0, resyncs: 0, tradeGaps: 0, messages: 0 },
};

// ------------------------------------------------------------------ connection
let ws = null;
let nextReqId = 1;
const pending = new Map();     // req_id -> resolve(reply)
let retryMs = 500;

function setConn(s, text) {
  state.conn = s;
  $("conn").dataset.state = s;
  $("conn").textContent = text;
}

function notice(text) {
  $("notice").textContent = text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function loadConfig() {
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

function connect() {
  const c = state.config;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const sock = new WebSocket(`${scheme}://${location.hostname}:${c.ws_port}${c.ws_path}`);
  ws = sock;
  setConn("connecting", "connecting");
  sock.onopen = () => {
    retryMs = 500;
    setConn("open", "live");
    notice("");
    onOpen();
  };
  sock.onmessage = (e) => onMessage(JSON.parse(e.data));
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    failPending();
    state.account = null;
    renderAccount();
    const wait = retryMs;
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    setConn("closed", `disconnected${e.reason ? ` (${e.reason})` : ""}; retrying in ${
      Math.round(wait / 100) / 10} s`);
    setTimeout(connect, wait);
  };
}

function failPending() {
  for (const resolve of pending.values()) {
    resolve({ type: "error", code: "closed", message: "the connection closed" });
  }
  pending.clear();
}

// Send a request; resolves with its direct reply (an error or reject included),
// never rejects.
function request(msg) {
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

function onOpen() {
  for (const sym of Object.keys(state.meta)) {
    state.books[sym] = new Book();
    state.tradeSeq[sym] = null;
    request({ op: "subscribe", channel: "book", symbol: sym }).then((r) => refused(r, "book"));
    request({ op: "subscribe", channel: "trades", symbol: sym }).then((r) => refused(r, "trades"));
  }
  schedule("book");
  if (state.apiKey) login(state.apiKey);
}

function refused(reply, what) {
  if (reply.type === "error") notice(`${what}: ${reply.code}: ${reply.message}`);
}

function onMessage(m) {
  state.counters.messages++;
  switch (m.type) {
    case "book_snapshot": onSnapshot(m); break;
    case "book_update": onBookUpdate(m); break;
    case "trade": onTrade(m); break;
    case "ack": orderAcked(m); break;
    case "fill": orderFilled(m); break;
    case "cancelled": orderGone(m); break;
    case "modified": orderModified(m); break;
    case "error":
      if (m.req_id == null) notice(`${m.code}: ${m.message}`);
      break;
    default: break;
  }
  if (m.req_id != null && pending.has(m.req_id)) {
    const resolve = pending.get(m.req_id);
    pending.delete(m.req_id);
    resolve(m);
  }
}

// ------------------------------------------------------------------ market data
function onSnapshot(m) {
  const book = state.books[m.symbol];
  if (!book) return;
  book.snapshot(m);
  if (m.symbol === state.symbol) schedule("book");
}

function onBookUpdate(m) {
  const book = state.books[m.symbol];
  if (!book) return;
  const r = book.update(m);
  if (r === "gap") {
    state.counters.bookGaps++;
    resync(m.symbol, ws);
  } else if (r && m.symbol === state.symbol) {
    schedule("book");
  }
}

// A gap in the book: ask for a fresh snapshot; updates are ignored until it comes.
async function resync(sym, sock) {
  state.counters.resyncs++;
  const r = await request({ op: "subscribe", channel: "book", symbol: sym, resync: true });
  if (r.type !== "error") return;
  notice(`resync ${sym}: ${r.code}: ${r.message}`);
  if (r.code === "rate_limited" && ws === sock && state.books[sym].resyncing) {
    setTimeout(() => {
      if (ws === sock) resync(sym, sock);
    }, r.retry_after_ms ?? 2000);
  }
}

function onTrade(m) {
  const sym = m.symbol;
  if (!state.trades[sym]) return;
  const last = state.tradeSeq[sym];
  if (last != null && m.prev_seq !== last) state.counters.tradeGaps++;
  state.tradeSeq[sym] = m.seq;
  // no timestamp on the wire yet: the trade's time is when this page received it
  const t = { seq: m.seq, price: m.price, qty: m.qty, side: m.taker_side, t: nowMs() };
  const list = state.trades[sym];
  list.push(t);
  if (list.length > TRADES_KEPT) list.splice(0, list.length - TRADES_KEPT);
  const bar = state.candles[sym].add(Number(m.price), Number(m.qty), t.t);
  if (sym === state.symbol) {
    if (candleSeries) {
      candleSeries.update(barData(bar));
      chartChanged();
    }
    schedule("tape");
  }
}

// ------------------------------------------------------------------ charts
const LW = window.LightweightCharts;
let chart = null;
let candleSeries = null;

function timeLabel(t, withSeconds = true) {
  const opts = withSeconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return new Date(t * 1000).toLocaleTimeString([], opts);
}

function makeChart() {
  if (!LW) {
    notice("the chart library did not load; candles are not shown");
    return;
  }
  chart = LW.createChart($("price-chart"), {
    autoSize: true,
    layout: { background: { type: LW.ColorType.Solid, color: "#ffffff" }, textColor: "#333",
      attributionLogo: true },
    grid: { vertLines: { color: "#f0f0f0" }, horzLines: { color: "#f0f0f0" } },
    // candle times are bucket starts in UTC seconds; show them in local time
    localization: { timeFormatter: (t) => timeLabel(t) },
    timeScale: {
      timeVisible: true, secondsVisible: true, rightOffset: 6, barSpacing: 10,
      tickMarkFormatter: (t, type) => (type < 3 ? new Date(t * 1000).toLocaleDateString()
        : timeLabel(t, type === 4)),
    },
  });
  candleSeries = chart.addSeries(LW.CandlestickSeries, {
    upColor: "#1a7f45", downColor: "#c62d22", borderVisible: false,
    wickUpColor: "#1a7f45", wickDownColor: "#c62d22",
  });
}

const barData = (b) => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close });

function chartChanged() {
  const data = candleSeries.data();
  const el = $("price-chart");
  el.dataset.candles = String(data.length);
  el.dataset.lastClose = data.length ? String(data[data.length - 1].close) : "";
}

function showCandles() {
  if (!candleSeries || !state.symbol) return;
  const tick = state.meta[state.symbol].tick;
  candleSeries.applyOptions({ priceFormat: { type: "price", precision: decimalsOf(tick),
    minMove: Number(tick) } });
  candleSeries.setData(state.candles[state.symbol].bars.map(barData));
  chartChanged();
}

// ------------------------------------------------------------------ rendering
const dirty = new Set();
let frame = 0;

function schedule(what) {
  dirty.add(what);
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (dirty.has("book")) renderBook();
  if (dirty.has("tape")) renderTape();
  if (dirty.has("orders")) renderOrders();
  if (dirty.has("balances")) renderBalances();
  dirty.clear();
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function row(cells, data = {}) {
  const tr = document.createElement("tr");
  Object.assign(tr.dataset, data);
  tr.append(...cells);
  return tr;
}

function renderBook() {
  const book = state.books[state.symbol];
  const ladder = $("ladder");
  if (!book || book.seq === null) {
    $("asks").replaceChildren();
    $("bids").replaceChildren();
    $("spread-cell").textContent = "waiting for the book";
    delete ladder.dataset.seq;
    return;
  }
  const asks = book.levels("asks", DEPTH_LEVELS);
  const bids = book.levels("bids", DEPTH_LEVELS);
  const levelRow = (side) => ([p, q, c]) =>
    row([cell(p), cell(q), cell(c)], { side, price: p, qty: q });
  $("asks").replaceChildren(...asks.slice(0, LADDER_DEPTH).reverse().map(levelRow("ask")));
  $("bids").replaceChildren(...bids.slice(0, LADDER_DEPTH).map(levelRow("bid")));
  if (asks.length && bids.length) {
    const a = parseFixed(asks[0][0]);
    const spread = formatFixed(a.n - parseFixed(bids[0][0]).n, a.scale);
    $("spread-cell").textContent = `spread ${spread}`;
  } else {
    $("spread-cell").textContent = book.size.bids + book.size.asks ? "one-sided book"
      : "empty book";
  }
  const hidden = [["bids", book.size.bids], ["asks", book.size.asks]]
    .filter(([, n]) => n > LADDER_DEPTH).map(([s, n]) => `${n - LADDER_DEPTH} more ${s}`);
  $("book-more").textContent = hidden.length ? `(${hidden.join(", ")} not shown)` : "";
  $("book-seq").textContent = `seq ${book.seq}${book.resyncing ? ", resyncing" : ""}`;
  ladder.dataset.seq = String(book.seq);
  drawDepth($("depth"), bids, asks);
}

function renderTape() {
  const list = state.trades[state.symbol] || [];
  const rows = list.slice(-TAPE_ROWS).reverse().map((t) => row([
    cell(new Date(t.t).toLocaleTimeString()), cell(t.price, t.side), cell(t.qty),
    cell(t.side, t.side),
  ], { seq: String(t.seq), price: t.price, qty: t.qty }));
  $("tape").tBodies[0].replaceChildren(...rows);
}

function renderBalances() {
  const rows = Object.entries(state.balances).map(([asset, b]) =>
    row([cell(asset), cell(b.available), cell(b.locked)],
      { asset, available: b.available, locked: b.locked }));
  $("balances").tBodies[0].replaceChildren(...rows);
}

function renderOrders() {
  const rows = [...state.orders.values()].map((o) => {
    const actions = document.createElement("td");
    const mod = document.createElement("button");
    mod.type = "button";
    mod.textContent = "modify";
    mod.className = "modify";
    mod.disabled = o.price === null;
    mod.onclick = () => openModify(o);
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "cancel";
    cancel.className = "cancel";
    cancel.onclick = () => cancelOrder(o);
    actions.append(mod, " ", cancel);
    return row([cell(o.symbol), cell(String(o.order_id)), cell(o.side, o.side),
      cell(o.price ?? "market"), cell(o.qty), actions],
    { orderId: String(o.order_id), symbol: o.symbol, side: o.side, price: o.price ?? "",
      qty: o.qty });
  });
  $("orders").tBodies[0].replaceChildren(...rows);
}

function renderAccount() {
  const on = state.account !== null;
  $("account-body").hidden = !on;
  $("logout-btn").hidden = !state.apiKey;
  $("api-key").hidden = !!state.apiKey;
  $("login-btn").hidden = !!state.apiKey;
  $("account-id").textContent = on ? `#${state.account}${state.admin ? " (admin)" : ""}` : "";
  if (on) {
    $("order-symbol").textContent = state.symbol;
    schedule("orders");
    schedule("balances");
  }
}

function selectSymbol(sym) {
  if (!state.meta[sym]) return;
  state.symbol = sym;
  $("symbol").value = sym;
  $("order-symbol").textContent = sym;
  if (location.hash !== `#${sym}`) history.replaceState(null, "", `#${sym}`);
  showCandles();
  schedule("book");
  schedule("tape");
}

// ------------------------------------------------------------------ account
function message(id, reply, okText) {
  const el = $(id);
  const bad = reply.type === "error" || reply.type === "reject";
  // a refusal shows the server's own code and message
  el.textContent = bad ? `${reply.code}: ${reply.message}` : okText;
  el.className = `msg ${bad ? "bad" : "ok"}`;
  el.dataset.code = bad ? reply.code : "ok";
  return !bad;
}

async function login(key) {
  $("login-msg").textContent = "logging in";
  $("login-msg").className = "msg";
  const r = await request({ op: "login", api_key: key });
  if (r.type !== "login") {
    if (r.code !== "closed") state.apiKey = null;
    message("login-msg", r);
    renderAccount();
    return;
  }
  state.apiKey = key;
  state.account = r.account;
  state.admin = r.admin;
  state.orders = new Map();
  message("login-msg", r, "");
  renderAccount();
  await Promise.all([refreshBalances(), refreshOrders()]);
}

async function refreshBalances() {
  const r = await request({ op: "balances" });
  if (r.type === "balances") {
    state.balances = r.balances;
    schedule("balances");
  } else if (r.code !== "closed") {
    notice(`balances: ${r.code}: ${r.message}`);
  }
}

async function refreshOrders() {
  const r = await request({ op: "open_orders" });
  if (r.type === "open_orders") {
    state.orders = new Map(r.orders.map((o) => [o.order_id, { ...o }]));
    schedule("orders");
  } else if (r.code !== "closed") {
    notice(`open orders: ${r.code}: ${r.message}`);
  }
}

// balances move with every ack, fill, cancel and modify: ask again, at most once
// per burst of events
let balancesTimer = 0;
function balancesLater() {
  if (state.account === null || balancesTimer) return;
  balancesTimer = setTimeout(() => {
    balancesTimer = 0;
    if (state.account !== null) refreshBalances();
  }, 150);
}

// Pushes and replies about this connection's orders (an order placed from another
// connection of the account shows after "refresh", but its changes are not pushed here)
function orderAcked(m) {
  if (state.account === null) return;
  state.orders.set(m.order_id, { symbol: m.symbol, order_id: m.order_id,
    client_order_id: m.client_order_id, side: m.side, price: m.price, qty: m.qty });
  schedule("orders");
  balancesLater();
}

// the last fills and cancels of this page's orders, newest first
function activity(text, kind) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  li.className = kind;
  const list = $("activity");
  list.prepend(li);
  while (list.children.length > ACTIVITY_ROWS) list.lastChild.remove();
}

function orderFilled(m) {
  activity(`order ${m.order_id} filled: ${m.side} ${m.qty} ${m.symbol} at ${m.price} ` +
    `(${m.liquidity}, fee ${m.fee} ${m.fee_asset}), ${m.leaves} open`, m.side);
  const o = state.orders.get(m.order_id);
  if (o) {
    if (parseFixed(m.leaves).n === 0n) state.orders.delete(m.order_id);
    else o.qty = m.leaves;
    schedule("orders");
  }
  balancesLater();
}

function orderGone(m) {
  activity(`order ${m.order_id} cancelled: ${m.side} ${m.qty} ${m.symbol}` +
    `${m.price ? ` at ${m.price}` : ""} (${m.reason})`, "cancelled");
  state.orders.delete(m.order_id);
  schedule("orders");
  balancesLater();
}

function orderModified(m) {
  const o = state.orders.get(m.order_id);
  if (o) {
    o.price = m.price;
    o.qty = m.leaves;
  } else {
    state.orders.set(m.order_id, { symbol: m.symbol, order_id: m.order_id,
      client_order_id: m.client_order_id, side: m.side, price: m.price, qty: m.leaves });
  }
  schedule("orders");
  balancesLater();
}

async function placeOrder() {
  const type = $("order-type").value;
  const msg = { op: "place", symbol: state.symbol, type,
    side: document.querySelector("input[name=side]:checked").value };
  const price = $("order-price").value.trim();
  const qty = $("order-qty").value.trim();
  // sent as typed: the gateway checks ticks, lots and bands and says what is wrong
  if (type === "limit" && price) msg.price = price;
  if (qty) msg.qty = qty;
  msg.tif = $("order-tif").value;
  if ($("order-post-only").checked) msg.post_only = true;
  const r = await request(msg);
  message("order-msg", r, r.type === "ack"
    ? `order ${r.order_id} placed: ${r.side} ${r.qty} ${r.symbol} at ${r.price ?? "market"}` : "");
}

async function cancelOrder(o) {
  const r = await request({ op: "cancel", symbol: o.symbol, order_id: o.order_id });
  message("order-msg", r, `order ${o.order_id} cancelled (${r.qty} open)`);
}

let modifying = null;
function openModify(o) {
  modifying = o;
  $("modify-id").textContent = `${o.order_id} (${o.symbol} ${o.side})`;
  $("modify-price").value = o.price;
  $("modify-qty").value = o.qty;
  $("modify-form").hidden = false;
}

async function modifyOrder() {
  if (!modifying) return;
  const o = modifying;
  const r = await request({ op: "modify", symbol: o.symbol, order_id: o.order_id,
    price: $("modify-price").value.trim(), qty: $("modify-qty").value.trim() });
  if (message("order-msg", r, `order ${o.order_id} modified: ${r.qty} at ${r.price}`)) {
    $("modify-form").hidden = true;
    modifying = null;
  }
}

// ------------------------------------------------------------------ wiring
function wire() {
  $("symbol").onchange = (e) => selectSymbol(e.target.value);
  $("interval").onchange = (e) => {
    state.interval = Number(e.target.value);
    for (const sym of Object.keys(state.meta)) {
      state.candles[sym] = Candles.from(state.trades[sym], state.interval);
    }
    showCandles();
  };
  $("login-form").onsubmit = (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    $("api-key").value = "";
    if (state.account !== null) return;
    login(key);
  };
  $("logout-btn").onclick = () => {
    state.apiKey = null;
    state.account = null;
    state.orders = new Map();
    state.balances = {};
    $("login-msg").textContent = "";
    $("activity").replaceChildren();
    renderAccount();
    if (ws) {                            // a connection logs in once: start a fresh one
      const old = ws;
      ws = null;
      old.onclose = null;
      old.close(1000, "log out");
      failPending();
      connect();
    }
  };
  $("refresh-btn").onclick = () => Promise.all([refreshBalances(), refreshOrders()]);
  $("order-type").onchange = (e) => {
    const market = e.target.value === "market";
    $("order-price").disabled = market;
    if (market && $("order-tif").value === "gtc") $("order-tif").value = "ioc";
  };
  $("order-form").onsubmit = (e) => {
    e.preventDefault();
    placeOrder();
  };
  $("modify-form").onsubmit = (e) => {
    e.preventDefault();
    modifyOrder();
  };
  $("modify-close").onclick = () => {
    $("modify-form").hidden = true;
    modifying = null;
  };
  window.addEventListener("resize", () => schedule("book"));
}

// For tests and the curious: read what the page holds (the browser tests use it)
window.ringexView = {
  get conn() { return state.conn; },
  get symbol() { return state.symbol; },
  get account() { return state.account; },
  get counters() { return { ...state.counters }; },
  book(sym = state.symbol) {
    const b = state.books[sym];
    if (!b) return null;
    const strip = (levels) => levels.map(([p, q]) => [p, q]);
    return { seq: b.seq, resyncing: b.resyncing, bids: strip(b.levels("bids")),
      asks: strip(b.levels("asks")) };
  },
  trades(sym = state.symbol) { return (state.trades[sym] || []).map((t) => ({ ...t })); },
  // the candles the price chart holds (the shown symbol)
  chartCandles() { return candleSeries ? candleSeries.data().map((d) => ({ ...d })) : []; },
  select: selectSymbol,
  // handle a message as if the gateway had sent it (tests: a gap in the book)
  receive(msg) { onMessage(msg); },
};

async function main() {
  wire();
  makeChart();
  state.config = await loadConfig();
  const select = $("symbol");
  for (const s of state.config.symbols) {
    state.meta[s.symbol] = s;
    state.trades[s.symbol] = [];
    state.candles[s.symbol] = new Candles(state.interval);
    const opt = document.createElement("option");
    opt.value = opt.textContent = s.symbol;
    select.append(opt);
  }
  select.disabled = false;
  const wanted = decodeURIComponent(location.hash.slice(1));
  selectSymbol(state.meta[wanted] ? wanted : state.config.symbols[0].symbol);
  connect();
}

main();
