// The price chart: candles of the shown symbol, drawn by Lightweight Charts
// (vendor/, the global LightweightCharts).
import { state } from "./state.js";
import { $, notice } from "./dom.js";
import { decimalsOf } from "./model.js";

const LW = window.LightweightCharts;
let chart = null;
let candleSeries = null;

function timeLabel(t, withSeconds = true) {
  const opts = withSeconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return new Date(t * 1000).toLocaleTimeString([], opts);
}

export function makeChart() {
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

// the candle count and last close as data attributes, for the tests
function chartChanged() {
  const data = candleSeries.data();
  const el = $("price-chart");
  el.dataset.candles = String(data.length);
  el.dataset.lastClose = data.length ? String(data[data.length - 1].close) : "";
}

// Show the shown symbol's candles from scratch (a new symbol or interval).
export function showCandles() {
  if (!candleSeries || !state.symbol) return;
  const tick = state.meta[state.symbol].tick;
  candleSeries.applyOptions({ priceFormat: { type: "price", precision: decimalsOf(tick),
    minMove: Number(tick) } });
  candleSeries.setData(state.candles[state.symbol].bars.map(barData));
  chartChanged();
}

// A candle of the shown symbol changed or began (Candles.add's bar).
export function updateCandle(bar) {
  if (!candleSeries) return;
  candleSeries.update(barData(bar));
  chartChanged();
}

// the candles the chart holds
export function chartCandles() {
  return candleSeries ? candleSeries.data().map((d) => ({ ...d })) : [];
}
