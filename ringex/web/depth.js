// The depth chart: cumulative quantity against price, bids left of the spread,
// asks right of it, drawn as step areas on a plain canvas.

const BID = { line: "#1a9850", fill: "rgba(26, 152, 80, 0.22)" };
const ASK = { line: "#d73027", fill: "rgba(215, 48, 39, 0.22)" };
const PAD = { left: 8, right: 8, top: 16, bottom: 18 };

// bids, asks: [[price, qty, cumulative], ...] best first (Book.levels)
export function drawDepth(canvas, bids, asks) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#777";
  const b = bids.map(([p, , c]) => [Number(p), Number(c)]);
  const a = asks.map(([p, , c]) => [Number(p), Number(c)]);
  if (!b.length && !a.length) {
    ctx.textAlign = "center";
    ctx.fillText("empty book", w / 2, h / 2);
    canvas.dataset.points = "0";
    return;
  }
  const lo = b.length ? b[b.length - 1][0] : a[0][0];
  const hi = a.length ? a[a.length - 1][0] : b[0][0];
  const span = hi - lo || Math.max(hi * 0.001, 1e-9);
  const maxCum = Math.max(b.length ? b[b.length - 1][1] : 0, a.length ? a[a.length - 1][1] : 0);
  const x = (p) => PAD.left + ((p - (hi === lo ? lo - span / 2 : lo)) / span) *
    (w - PAD.left - PAD.right);
  const y = (c) => h - PAD.bottom - (c / maxCum) * (h - PAD.top - PAD.bottom);
  const base = y(0);

  // a side as steps walking away from the spread: at each level the cumulative
  // quantity rises to include that level
  const side = (levels, colors) => {
    if (!levels.length) return;
    ctx.beginPath();
    ctx.moveTo(x(levels[0][0]), base);
    let prev = 0;
    for (const [p, c] of levels) {
      ctx.lineTo(x(p), y(prev));
      ctx.lineTo(x(p), y(c));
      prev = c;
    }
    const edge = levels === b ? PAD.left : w - PAD.right;
    ctx.lineTo(edge, y(prev));
    ctx.strokeStyle = colors.line;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(edge, base);
    ctx.closePath();
    ctx.fillStyle = colors.fill;
    ctx.fill();
  };
  side(b, BID);
  side(a, ASK);

  ctx.fillStyle = "#555";
  ctx.textAlign = "left";
  ctx.fillText(bids.length ? bids[bids.length - 1][0] : "", PAD.left, h - 4);
  ctx.textAlign = "right";
  ctx.fillText(asks.length ? asks[asks.length - 1][0] : "", w - PAD.right, h - 4);
  ctx.textAlign = "left";
  const deepest = [bids, asks].filter((s) => s.length).map((s) => s[s.length - 1][2])
    .sort((u, v) => Number(v) - Number(u))[0];
  ctx.fillText(`cumulative ${deepest}`, PAD.left, 11);
  canvas.dataset.points = String(b.length + a.length);
}
