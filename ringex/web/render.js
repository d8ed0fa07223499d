// Drawing the tables (ladder, tape, balances, open orders) at most once a frame:
// schedule() marks what changed, the next animation frame redraws it.
import { state } from "./state.js";
import { $ } from "./dom.js";
import { formatFixed, parseFixed } from "./model.js";
import { drawDepth } from "./depth.js";

const LADDER_DEPTH = 15;       // levels shown a side in the ladder
const DEPTH_LEVELS = 60;       // levels a side in the depth chart
const TAPE_ROWS = 40;

const dirty = new Set();
let frame = 0;
// what an open order's buttons do (set by app.js; the account module owns them)
let orderActions = { modify() {}, cancel() {} };

export function setOrderActions(actions) {
  orderActions = actions;
}

export function schedule(what) {
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
    mod.onclick = () => orderActions.modify(o);
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "cancel";
    cancel.className = "cancel";
    cancel.onclick = () => orderActions.cancel(o);
    actions.append(mod, " ", cancel);
    return row([cell(o.symbol), cell(String(o.order_id)), cell(o.side, o.side),
      cell(o.price ?? "market"), cell(o.qty), actions],
    { orderId: String(o.order_id), symbol: o.symbol, side: o.side, price: o.price ?? "",
      qty: o.qty });
  });
  $("orders").tBodies[0].replaceChildren(...rows);
}
