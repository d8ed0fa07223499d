// The web view's data, without the DOM: exact decimals, order books with gap
// detection, candles built from trades. Plain ES module, no dependencies.

// ------------------------------------------------------------------ decimals
// Prices and quantities arrive as plain decimal strings with a fixed number of
// decimals ("30000.00", "0.5000"). Sums (cumulative depth) are done on BigInt
// minor units so they stay exact; only the charts use floating point.

export function parseFixed(s) {
  const [whole, frac = ""] = s.split(".");
  return { n: BigInt(whole + frac), scale: frac.length };
}

export function formatFixed(n, scale) {
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString().padStart(scale + 1, "0");
  const out = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return neg ? `-${out}` : out;
}

export function decimalsOf(s) {
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

const isZero = (q) => parseFixed(q).n === 0n;

// ------------------------------------------------------------------ book
// One symbol's book from the `book` channel (docs/protocol.md section 5): a
// book_snapshot replaces it; a book_update applies only if its prev_seq is the
// seq of the last message we applied, otherwise it is a gap and the caller
// resubscribes with "resync": true and ignores updates until the snapshot.

export class Book {
  constructor() {
    this.bids = new Map();     // price string -> qty string
    this.asks = new Map();
    this.seq = null;           // seq of the last applied message; null: no snapshot yet
    this.resyncing = false;
  }

  snapshot(msg) {
    this.bids = new Map(msg.bids);
    this.asks = new Map(msg.asks);
    this.seq = msg.seq;
    this.resyncing = false;
  }

  // true: applied; false: ignored (no snapshot yet, or resyncing); "gap": missed
  // something, the book is no longer trusted
  update(msg) {
    if (this.seq === null || this.resyncing) return false;
    if (msg.prev_seq !== this.seq) {
      this.resyncing = true;
      return "gap";
    }
    for (const [side, levels] of [[this.bids, msg.bids], [this.asks, msg.asks]]) {
      for (const [price, qty] of levels) {
        if (isZero(qty)) side.delete(price);
        else side.set(price, qty);
      }
    }
    this.seq = msg.seq;
    return true;
  }

  // [[price, qty, cumulative], ...] best first (bids high to low, asks low to high)
  levels(side, depth = Infinity) {
    const map = side === "bids" ? this.bids : this.asks;
    const sign = side === "bids" ? -1 : 1;
    const rows = [...map.entries()].map(([p, q]) => [p, q, parseFixed(p).n]);
    rows.sort((a, b) => (a[2] < b[2] ? -sign : a[2] > b[2] ? sign : 0));
    let cum = 0n;
    let scale = 0;
    const out = [];
    for (const [p, q] of rows.slice(0, depth)) {
      const f = parseFixed(q);
      cum += f.n;
      scale = f.scale;
      out.push([p, q, formatFixed(cum, scale)]);
    }
    return out;
  }

  get size() {
    return { bids: this.bids.size, asks: this.asks.size };
  }
}

// ------------------------------------------------------------------ candles
// Trades carry no timestamp on the wire yet, so a candle buckets trades by the
// time the browser RECEIVED them (a monotonic clock: performance.timeOrigin +
// performance.now()). Trades that crossed the network together land in one
// candle even if the engine matched them seconds apart; a later protocol change
// adds `ts` to trades, and then the bucket should use it.

export class Candles {
  constructor(intervalS) {
    this.intervalS = intervalS;
    this.bars = [];            // {time (UTC seconds, bucket start), open, high, low, close, volume}
  }

  // a trade at `price` (number) of `qty` (number) received at `tMs`; returns the bar
  add(price, qty, tMs) {
    let time = Math.floor(tMs / 1000 / this.intervalS) * this.intervalS;
    const last = this.bars[this.bars.length - 1];
    if (last && time < last.time) time = last.time;   // never go back in time
    if (last && last.time === time) {
      last.high = Math.max(last.high, price);
      last.low = Math.min(last.low, price);
      last.close = price;
      last.volume += qty;
      return last;
    }
    const bar = { time, open: price, high: price, low: price, close: price, volume: qty };
    this.bars.push(bar);
    return bar;
  }

  static from(trades, intervalS) {
    const c = new Candles(intervalS);
    for (const t of trades) c.add(Number(t.price), Number(t.qty), t.t);
    return c;
  }
}

// the browser's receive time in ms, never going backwards
export function nowMs() {
  return performance.timeOrigin + performance.now();
}
