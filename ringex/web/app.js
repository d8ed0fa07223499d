// The ringex web view: market data from the public WebSocket channels (book,
// trades) and, after a login with an API key, the account's balances and orders.
// The protocol is docs/protocol.md; this page is described in docs/web.md.
// This module wires the others together and starts the page.
import { state } from "./state.js";
import { $, notice } from "./dom.js";
import { connect, loadConfig, receive, setHandlers } from "./connection.js";
import { addSymbols, onBookUpdate, onSnapshot, onTrade, setCandleInterval, subscribeAll }
  from "./market.js";
import { chartCandles, makeChart, showCandles } from "./charts.js";
import { schedule, setOrderActions } from "./render.js";
import { cancelOrder, connectionClosed, openModify, orderAcked, orderFilled, orderGone,
  orderModified, relogin, wireAccount } from "./account.js";

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

function wire() {
  setHandlers({
    open() {
      subscribeAll();
      relogin();
    },
    message: onMessage,
    closed: connectionClosed,
  });
  setOrderActions({ modify: openModify, cancel: cancelOrder });
  $("symbol").onchange = (e) => selectSymbol(e.target.value);
  $("interval").onchange = (e) => {
    setCandleInterval(Number(e.target.value));
    showCandles();
  };
  wireAccount();
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
  chartCandles,
  select: selectSymbol,
  // handle a message as if the gateway had sent it (tests: a gap in the book)
  receive(msg) { receive(msg); },
};

async function main() {
  wire();
  makeChart();
  state.config = await loadConfig();
  addSymbols(state.config.symbols);
  const select = $("symbol");
  for (const s of state.config.symbols) {
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
