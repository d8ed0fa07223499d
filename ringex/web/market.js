// Market data of every symbol: books from book_snapshot/book_update (a prev_seq
// gap asks for a resync), trades and the candles built from them.
import { state } from "./state.js";
import { notice } from "./dom.js";
import { Book, Candles, nowMs } from "./model.js";
import { request, socket } from "./connection.js";
import { updateCandle } from "./charts.js";
import { schedule } from "./render.js";

const TRADES_KEPT = 5000;      // per symbol, to rebuild candles when the interval changes

export function addSymbols(symbols) {
  for (const s of symbols) {
    state.meta[s.symbol] = s;
    state.trades[s.symbol] = [];
    state.candles[s.symbol] = new Candles(state.interval);
  }
}

// On every (re)connection: fresh books, so the subscriptions' snapshots start them.
export function subscribeAll() {
  for (const sym of Object.keys(state.meta)) {
    state.books[sym] = new Book();
    state.tradeSeq[sym] = null;
    request({ op: "subscribe", channel: "book", symbol: sym }).then((r) => refused(r, "book"));
    request({ op: "subscribe", channel: "trades", symbol: sym }).then((r) => refused(r, "trades"));
  }
  schedule("book");
}

function refused(reply, what) {
  if (reply.type === "error") notice(`${what}: ${reply.code}: ${reply.message}`);
}

export function onSnapshot(m) {
  const book = state.books[m.symbol];
  if (!book) return;
  book.snapshot(m);
  if (m.symbol === state.symbol) schedule("book");
}

export function onBookUpdate(m) {
  const book = state.books[m.symbol];
  if (!book) return;
  const r = book.update(m);
  if (r === "gap") {
    state.counters.bookGaps++;
    resync(m.symbol, socket());
  } else if (r && m.symbol === state.symbol) {
    schedule("book");
  }
}

// A gap in the book: ask for a fresh snapshot; updates are ignored until it comes.
// A retry is dropped once its connection (sock) has gone: the new one resubscribes.
async function resync(sym, sock) {
  state.counters.resyncs++;
  const r = await request({ op: "subscribe", channel: "book", symbol: sym, resync: true });
  if (r.type !== "error") return;
  notice(`resync ${sym}: ${r.code}: ${r.message}`);
  if (r.code === "rate_limited" && socket() === sock && state.books[sym].resyncing) {
    setTimeout(() => {
      if (socket() === sock) resync(sym, sock);
    }, r.retry_after_ms ?? 2000);
  }
}

export function onTrade(m) {
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
    updateCandle(bar);
    schedule("tape");
  }
}

// A new candle interval: rebuild every symbol's candles from the trades kept.
export function setCandleInterval(seconds) {
  state.interval = seconds;
  for (const sym of Object.keys(state.meta)) {
    state.candles[sym] = Candles.from(state.trades[sym], state.interval);
  }
}
