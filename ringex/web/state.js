// What the page holds, in one object shared by the modules (sockets, timers and
// the chart stay private to the module that owns them).
export const state = {
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
