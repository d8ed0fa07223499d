// The account panel: login with an API key, balances and open orders kept
// current from this connection's order events, the order and modify forms,
// and the list of recent fills and cancels.
import { state } from "./state.js";
import { $, notice } from "./dom.js";
import { parseFixed } from "./model.js";
import { reconnect, request } from "./connection.js";
import { schedule } from "./render.js";

const ACTIVITY_ROWS = 8;

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
  await refresh();
}

// A new connection logs in again with the key held (if any).
export function relogin() {
  if (state.apiKey) login(state.apiKey);
}

// The connection dropped: logged out until it is back.
export function connectionClosed() {
  state.account = null;
  renderAccount();
}

function logout() {
  state.apiKey = null;
  state.account = null;
  state.orders = new Map();
  state.balances = {};
  $("login-msg").textContent = "";
  $("activity").replaceChildren();
  renderAccount();
  reconnect();                         // a connection logs in once: start a fresh one
}

const refresh = () => Promise.all([refreshBalances(), refreshOrders()]);

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
export function orderAcked(m) {
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

export function orderFilled(m) {
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

export function orderGone(m) {
  activity(`order ${m.order_id} cancelled: ${m.side} ${m.qty} ${m.symbol}` +
    `${m.price ? ` at ${m.price}` : ""} (${m.reason})`, "cancelled");
  state.orders.delete(m.order_id);
  schedule("orders");
  balancesLater();
}

export function orderModified(m) {
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

export async function cancelOrder(o) {
  const r = await request({ op: "cancel", symbol: o.symbol, order_id: o.order_id });
  message("order-msg", r, `order ${o.order_id} cancelled (${r.qty} open)`);
}

let modifying = null;
export function openModify(o) {
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

export function wireAccount() {
  $("login-form").onsubmit = (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    $("api-key").value = "";
    if (state.account !== null) return;
    login(key);
  };
  $("logout-btn").onclick = logout;
  $("refresh-btn").onclick = refresh;
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
}
