// synod trace viewer: draws the embedded trace model as a space-time diagram.
// Time runs left to right; one lane per node. Only the visible window is
// drawn, sampled past limits.arrows / limits.events elements (sampleTiered),
// so a run of any length stays responsive. The #viewer element reports what was
// drawn in data-* attributes (lanes, arrows-total, arrows-in-window,
// arrows-drawn, ...), which the tests read from the DOM.
(function () {
  "use strict";
  const viewer = document.getElementById("viewer");

  function fail(err) {
    viewer.dataset.status = "error";
    viewer.dataset.error = String(err && err.message || err);
    const box = document.getElementById("error");
    box.hidden = false;
    box.textContent = "The viewer failed: " + viewer.dataset.error;
  }
  window.addEventListener("error", function (e) { fail(e.error || e.message); });

  const D = JSON.parse(document.getElementById("trace-data").textContent);
  const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#ff7f0e", "#393b79", "#637939", "#7b4173", "#3182bd"];
  const EVENT_PALETTE = ["#0b7285", "#5c940d", "#862e9c", "#c2255c", "#e67700", "#364fc7",
    "#087f5b", "#a61e4d", "#5f3dc4", "#d9480f", "#2b8a3e", "#1864ab"];
  const ROLE_COLORS = { leader: "#f2b134", candidate: "#c08de0", precandidate: "#e2d2f2",
    "pre-candidate": "#e2d2f2", pre_candidate: "#e2d2f2", follower: "#a9cdea", learner: "#9edcc9",
    observer: "#d0d0d0", primary: "#f2b134", backup: "#a9cdea" };
  const OTHER_ROLE_COLORS = ["#f6c1a5", "#c5e0a5", "#b9c3f0", "#f0b9d9", "#d9d0a5", "#a5d9d4"];
  const DENSE_ARROWS = 800, INITIAL_ARROWS_MAX = 1000, INITIAL_ARROWS_SHOWN = 300, LABELLED_EVENTS_MAX = 400;
  const LABEL_W = 150, AXIS_H = 24, PAD_R = 14, LANE_H_MIN = 34, LANE_H_MAX = 120;
  const SYSTEM_KINDS = { timer: 1, crash: 1, exit: 1, restart: 1, start: 1, pause: 1, resume: 1, clock: 1,
    nemesis: 1, recv: 1, drop: 1, send: 1, client_op: 1 };

  const A = D.arrows, P = D.points;
  const nA = A.ts.length, nP = P.t.length, nLanes = D.lanes.length;
  const t0 = D.t0, t1 = D.t1 > D.t0 ? D.t1 : D.t0 + 1;
  // Real runs use a monotonic clock far from zero: times count from D.origin.
  const origin = D.origin;
  const minSpan = Math.max((t1 - t0) * 1e-7, 1e-6);
  const view = { a: t0, b: t1 };
  // Timers are hidden until asked for: a Raft run has thousands, on every lane.
  const show = { messages: true, drops: true, timers: false, events: true, labels: true };
  const hiddenTypes = new Set();
  let laneH = 40, plotW = 800, plotH = 200;
  let drawn = { arrows: [], events: [], rects: [] };
  let hot = null;

  const timerKind = D.kinds.indexOf("timer");
  const kindColor = D.kinds.map(function (k, i) { return EVENT_PALETTE[i % EVENT_PALETTE.length]; });

  // Long arrows are few; keep them apart so the window search over the
  // short ones can start at (window start - longest short arrow).
  const longCut = (t1 - t0) / 64;
  const longArrows = [];
  let maxShort = 0;
  for (let i = 0; i < nA; i++) {
    const dur = A.te[i] - A.ts[i];
    if (dur > longCut) longArrows.push(i); else if (dur > maxShort) maxShort = dur;
  }
  const roleColorCache = {};
  let otherRoles = 0;
  function roleColor(role) {
    const key = String(role).toLowerCase();
    if (ROLE_COLORS[key]) return ROLE_COLORS[key];
    if (!roleColorCache[key]) roleColorCache[key] = OTHER_ROLE_COLORS[otherRoles++ % OTHER_ROLE_COLORS.length];
    return roleColorCache[key];
  }

  // -- small helpers ---------------------------------------------------------
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function fmtT(ms, step) {
    const t = ms - origin;
    const s = step === undefined ? Math.abs(t) : step;
    if (s >= 1000) return (t / 1000).toFixed(s >= 10000 ? 1 : 3).replace(/\.?0+$/, "") + " s";
    if (s >= 1) return (+t.toFixed(3)) + " ms";
    return (+t.toFixed(6)) + " ms";
  }
  function fmtDur(ms) {
    return ms >= 1000 ? (+(ms / 1000).toFixed(3)) + " s" : (+ms.toFixed(3)) + " ms";
  }
  function xOf(t) { return LABEL_W + (t - view.a) / (view.b - view.a) * plotW; }
  function tOf(x) { return view.a + (x - LABEL_W) / plotW * (view.b - view.a); }
  function laneTop(l) { return AXIS_H + l * laneH; }
  function yMid(l) { return laneTop(l) + laneH / 2; }
  function lowerBound(arr, v) {
    let lo = 0, hi = arr.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] < v) lo = m + 1; else hi = m; }
    return lo;
  }
  function upperBound(arr, v) {
    let lo = 0, hi = arr.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m] <= v) lo = m + 1; else hi = m; }
    return lo;
  }
  function sample(list, max) {
    if (list.length <= max) return list;
    const out = [], stride = list.length / max;
    for (let k = 0; k < max; k++) out.push(list[Math.floor(k * stride)]);
    return out;
  }
  // Sample a crowded window keeping the rarer, telling items first: tiers in
  // order of rank(i) (0 first), each sampled evenly within what is left of
  // the budget (tier 0 within tier0Max); the result stays in time order.
  function sampleTiered(list, max, rank, tier0Max) {
    if (list.length <= max) return list;
    const tiers = [[], [], []];
    for (const i of list) tiers[rank(i)].push(i);
    let out = [], left = max;
    tiers.forEach(function (tier, r) {
      const taken = sample(tier, r === 0 ? Math.min(left, tier0Max) : left);
      out = out.concat(taken);
      left -= taken.length;
    });
    return out.sort(function (x, y) { return x - y; });
  }
  const LIFECYCLE_KINDS = { crash: 1, exit: 1, restart: 1, start: 1, pause: 1, resume: 1, nemesis: 1, clock: 1 };
  const kindRank = D.kinds.map(function (k) { return LIFECYCLE_KINDS[k] ? 0 : k === "timer" ? 2 : 1; });
  function clampView() {
    let w = Math.max(view.b - view.a, minSpan);
    const full = t1 - t0;
    if (w >= full) { view.a = t0; view.b = t1; return; }
    if (view.a < t0) view.a = t0;
    if (view.a + w > t1) view.a = t1 - w;
    view.b = view.a + w;
  }
  function niceStep(span, px) {
    const raw = span / Math.max(px / 90, 1);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }
  function arrowColor(i) { return PALETTE[A.y[i] % PALETTE.length]; }

  // -- what is in the window --------------------------------------------------
  function arrowVisible(i) {
    const st = A.f[i] & 3;
    if (st === 1 ? !show.drops : !show.messages) return false;
    return !hiddenTypes.has(A.y[i]);
  }
  function arrowsInWindow() {
    const out = [];
    const lo = lowerBound(A.ts, view.a - maxShort), hi = upperBound(A.ts, view.b);
    for (let i = lo; i < hi; i++) {
      if (A.te[i] >= view.a && A.te[i] - A.ts[i] <= longCut && arrowVisible(i)) out.push(i);
    }
    for (const i of longArrows) {
      if (A.ts[i] <= view.b && A.te[i] >= view.a && arrowVisible(i)) out.push(i);
    }
    return out;
  }
  function pointsInWindow() {
    const out = [];
    const lo = lowerBound(P.t, view.a), hi = upperBound(P.t, view.b);
    for (let i = lo; i < hi; i++) {
      const isTimer = P.k[i] === timerKind;
      if (isTimer ? show.timers : show.events) out.push(i);
    }
    return out;
  }

  // -- drawing ---------------------------------------------------------------
  function markerDefs() {
    let s = "<defs>";
    PALETTE.forEach(function (c, i) {
      s += '<marker id="ah' + i + '" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
        '<path d="M0,1 L10,5 L0,9 z" fill="' + c + '"/></marker>';
    });
    s += '<marker id="ah-grey" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,1 L10,5 L0,9 z" fill="#888"/></marker>';
    s += '<pattern id="hatch-down" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">' +
      '<rect width="6" height="6" fill="rgba(120,120,120,0.28)"/><line x1="0" y1="0" x2="0" y2="6" stroke="rgba(60,60,60,0.35)" stroke-width="2"/></pattern>';
    s += '<pattern id="hatch-paused" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">' +
      '<rect width="6" height="6" fill="rgba(255,214,80,0.22)"/><line x1="0" y1="0" x2="0" y2="6" stroke="rgba(217,164,0,0.45)" stroke-width="1.5"/></pattern>';
    s += '<clipPath id="plot-clip"><rect x="' + LABEL_W + '" y="0" width="' + plotW + '" height="' + plotH + '"/></clipPath>';
    return s + "</defs>";
  }

  function drawAxis() {
    const span = view.b - view.a, step = niceStep(span, plotW);
    let s = '<g id="axis">';
    const first = Math.ceil((view.a - origin) / step) * step + origin;
    for (let t = first; t <= view.b + 1e-9; t += step) {
      const x = xOf(t);
      s += '<line class="tick-line" x1="' + x.toFixed(1) + '" y1="' + AXIS_H + '" x2="' + x.toFixed(1) + '" y2="' + plotH + '"/>';
      const anchor = x > LABEL_W + plotW - 28 ? "end" : "middle";  // the last label stays on the page
      s += '<text class="tick-label" x="' + x.toFixed(1) + '" y="' + (AXIS_H - 8) + '" text-anchor="' + anchor + '">' + esc(fmtT(t, step)) + "</text>";
    }
    s += '<line class="axis-line" x1="' + LABEL_W + '" y1="' + (AXIS_H - 1) + '" x2="' + (LABEL_W + plotW) + '" y2="' + (AXIS_H - 1) + '"/>';
    return s + "</g>";
  }

  function drawLanes() {
    let s = '<g id="lanes">';
    for (let l = 0; l < nLanes; l++) {
      const y = laneTop(l), name = D.lanes[l];
      s += '<g class="lane" data-node="' + esc(name) + '" data-lane="' + l + '">' +
        '<rect class="lane-bg' + (l % 2 ? " odd" : "") + '" x="0" y="' + y + '" width="' + (LABEL_W + plotW + PAD_R) + '" height="' + laneH + '"/>' +
        '<line class="lane-line" x1="' + LABEL_W + '" y1="' + yMid(l) + '" x2="' + (LABEL_W + plotW) + '" y2="' + yMid(l) + '"/>' +
        '<text class="lane-label group-' + D.laneGroup[l] + '" x="8" y="' + (yMid(l) + 4) + '">' + esc(name.length > 20 ? name.slice(0, 19) + "\u2026" : name) + "</text></g>";
    }
    return s + "</g>";
  }

  function rectX(a, b) {
    const x1 = Math.max(xOf(a), LABEL_W - 2), x2 = Math.min(xOf(b), LABEL_W + plotW + 2);
    return [x1, Math.max(x2 - x1, 1.5)];
  }

  // Role labels are drawn last, over arrows and markers, with a white halo
  // (.state-label's paint-order), so "leader t3" stays readable.
  let stateLabels = "";
  function drawStateLabels() {
    return '<g id="state-labels" clip-path="url(#plot-clip)">' + stateLabels + "</g>";
  }

  function drawSpans() {
    let s = '<g id="spans" clip-path="url(#plot-clip)">';
    stateLabels = "";
    const rects = [];
    for (let k = 0; k < D.bands.length; k++) {
      const b = D.bands[k];
      if (b[2] < view.a || b[1] > view.b) continue;
      const h = (laneH - 6) / 2, r = rectX(b[1], b[2]), y = laneTop(b[0]) + 3 + b[6] * h;
      s += '<rect class="band" x="' + r[0].toFixed(1) + '" y="' + y + '" width="' + r[1].toFixed(1) + '" height="' + h + '"/>';
      const ly = b[6] === 0 ? y + 11 : y + h - 4;  // away from the markers on the lane's middle line
      if (r[1] > b[3].length * 6 + 8) s += '<text class="band-label" x="' + (r[0] + 4).toFixed(1) + '" y="' + ly.toFixed(1) + '">' + esc(b[3]) + "</text>";
      rects.push({ what: "band", i: k, x: r[0], y: y, w: r[1], h: h });
    }
    for (let k = 0; k < D.intervals.length; k++) {
      const iv = D.intervals[k];
      if (iv[2] < view.a || iv[1] > view.b) continue;
      const r = rectX(iv[1], iv[2]), y = laneTop(iv[0]) + 2, h = laneH - 4;
      const cls = iv[3] === 0 ? "down" : "paused";
      s += '<rect class="' + cls + '" x="' + r[0].toFixed(1) + '" y="' + y + '" width="' + r[1].toFixed(1) + '" height="' + h + '"/>';
      if (r[1] > 50) s += '<text class="iv-label" x="' + (r[0] + 5).toFixed(1) + '" y="' + (y + h - 5) + '">' + cls + "</text>";
      rects.push({ what: "interval", i: k, x: r[0], y: y, w: r[1], h: h });
    }
    for (let k = 0; k < D.states.length; k++) {
      const st = D.states[k];
      if (st[2] < view.a || st[1] > view.b) continue;
      const r = rectX(st[1], st[2]), y = laneTop(st[0]) + 2, h = 10;
      s += '<rect class="state" x="' + r[0].toFixed(1) + '" y="' + y + '" width="' + r[1].toFixed(1) + '" height="' + h + '" fill="' + roleColor(st[3]) + '"/>';
      const label = st[3] + (st[4] !== "" ? " t" + st[4] : "");
      if (r[1] > label.length * 5.5 + 6) stateLabels += '<text class="state-label" x="' + (r[0] + 3).toFixed(1) + '" y="' + (y + 8) + '">' + esc(label) + "</text>";
      rects.push({ what: "state", i: k, x: r[0], y: y, w: r[1], h: h });
    }
    for (let k = 0; k < D.ops.length; k++) {
      const op = D.ops[k];
      if (op[3] < view.a || op[2] > view.b) continue;
      const r = rectX(op[2], op[3]), h = 7, y = laneTop(op[0]) + laneH - 3 - (op[1] + 1) * (h + 1);
      s += '<rect class="op ' + (op[4] || "pending") + (op[8] ? " failing " + esc(op[8]) : "") + '" data-i="' + k + '" x="' + r[0].toFixed(1) + '" y="' + y + '" width="' + r[1].toFixed(1) + '" height="' + h + '"/>';
      if (show.labels && r[1] > op[5].length * 5 + 6) s += '<text class="op-label" x="' + (r[0] + 2).toFixed(1) + '" y="' + (y + 6) + '">' + esc(op[5]) + "</text>";
      else if (op[8]) s += '<text class="op-label failing" x="' + (r[0] + r[1] + 3).toFixed(1) + '" y="' + (y + 6) + '">' + esc(op[5]) + "</text>";  // a failing op is always named
      rects.push({ what: "op", i: k, x: r[0], y: y, w: r[1], h: h });
    }
    drawn.rects = rects;
    return s + "</g>";
  }

  function arrowGeometry(i) {
    const x1 = xOf(A.ts[i]), y1 = yMid(A.s[i]);
    let x2 = xOf(A.te[i]), y2 = yMid(A.d[i]);
    const st = A.f[i] & 3;
    if ((st === 2 || (A.f[i] & 8)) && x2 - x1 < 10) {
      // Lost at the sender, or still in flight: a short stub towards dst.
      const dy = y2 - y1;
      x2 = x1 + 12;
      // Short enough to end between the lane's line and the role band at its top.
      const reach = Math.max(6, Math.min(laneH * 0.3, laneH / 2 - 16));
      y2 = y1 + (dy === 0 ? 0 : Math.sign(dy) * Math.min(Math.abs(dy), reach));
    }
    return [x1, y1, x2, y2];
  }

  // A crowded window draws its arrows thin and translucent, so the bands,
  // markers and labels under them still read.
  function drawArrows(list, dense) {
    let s = '<g id="arrows"' + (dense ? ' class="dense"' : "") + ' clip-path="url(#plot-clip)">';
    const geo = [];
    for (const i of list) {
      const g = arrowGeometry(i), st = A.f[i] & 3, dup = A.f[i] & 4;
      let cls = "msg " + (st === 0 ? "delivered" : st === 1 ? "dropped" : "inflight") + (dup ? " dup" : "");
      let stroke = st === 0 ? ' stroke="' + arrowColor(i) + '"' : "";
      let marker = st === 0 ? ' marker-end="url(#ah' + (A.y[i] % PALETTE.length) + ')"' : st === 2 ? ' marker-end="url(#ah-grey)"' : "";
      s += '<line class="' + cls + '" data-i="' + i + '" x1="' + g[0].toFixed(1) + '" y1="' + g[1].toFixed(1) + '" x2="' + g[2].toFixed(1) + '" y2="' + g[3].toFixed(1) + '"' + stroke + marker + "/>";
      if (st === 1) {
        const x = g[2], y = g[3];
        s += '<path class="drop-x" data-i="' + i + '" d="M' + (x - 4).toFixed(1) + "," + (y - 4).toFixed(1) + " L" + (x + 4).toFixed(1) + "," + (y + 4).toFixed(1) +
          " M" + (x - 4).toFixed(1) + "," + (y + 4).toFixed(1) + " L" + (x + 4).toFixed(1) + "," + (y - 4).toFixed(1) + '"/>';
      }
      geo.push({ i: i, g: g });
    }
    drawn.arrows = geo;
    return s + "</g>";
  }

  function shape(kind, x, y) {
    const f = function (v) { return v.toFixed(1); };
    switch (kind) {
      case "timer": return { d: "M" + f(x - 2.5) + "," + f(y) + " a2.5,2.5 0 1,0 5,0 a2.5,2.5 0 1,0 -5,0", fill: "#fff", stroke: "#8a8f98" };
      case "crash": return { d: "M" + f(x - 6) + "," + f(y - 6) + " L" + f(x + 6) + "," + f(y + 6) + " M" + f(x - 6) + "," + f(y + 6) + " L" + f(x + 6) + "," + f(y - 6), fill: "none", stroke: "#c92a2a", width: 3 };
      case "exit": return { d: "M" + f(x - 5) + "," + f(y - 5) + " h10 v10 h-10 z", fill: "#333", stroke: "#000" };
      case "restart": case "start": return { d: "M" + f(x - 6) + "," + f(y + 5) + " L" + f(x) + "," + f(y - 6) + " L" + f(x + 6) + "," + f(y + 5) + " z", fill: "#2f9e44", stroke: "#1b5e20" };
      case "pause": return { d: "M" + f(x - 4) + "," + f(y - 6) + " v12 M" + f(x + 2) + "," + f(y - 6) + " v12", fill: "none", stroke: "#d9a400", width: 3 };
      case "resume": return { d: "M" + f(x - 4) + "," + f(y - 6) + " L" + f(x + 6) + "," + f(y) + " L" + f(x - 4) + "," + f(y + 6) + " z", fill: "#f2c200", stroke: "#b08800" };
      case "clock": return { d: "M" + f(x) + "," + f(y - 5) + " L" + f(x + 5) + "," + f(y) + " L" + f(x) + "," + f(y + 5) + " L" + f(x - 5) + "," + f(y) + " z", fill: "#74c0fc", stroke: "#1864ab" };
      case "nemesis": return { d: "M" + f(x) + "," + f(y - 6) + " L" + f(x + 6) + "," + f(y) + " L" + f(x) + "," + f(y + 6) + " L" + f(x - 6) + "," + f(y) + " z", fill: "#e599f7", stroke: "#a0208a" };
      case "recv": case "drop": case "send": return { d: "M" + f(x - 3) + "," + f(y - 3) + " h6 v6 h-6 z", fill: "#fff", stroke: "#d62728" };
      default: return null;
    }
  }

  // A nemesis action says whom it hit (the page computes it: P.lb).
  function eventLabel(i) {
    const lb = P.lb && P.lb[i];
    return lb || D.kinds[P.k[i]];
  }

  function drawEvents(list) {
    let s = '<g id="events" clip-path="url(#plot-clip)">';
    const pts = [];
    let untimed = 0;
    for (const i of list) if (P.k[i] !== timerKind) untimed++;
    const labelled = show.labels && untimed <= LABELLED_EVENTS_MAX;
    const lastLabelEnd = new Array(nLanes).fill(-Infinity);
    for (const i of list) {
      const x = xOf(P.t[i]), l = P.l[i], kind = D.kinds[P.k[i]];
      const custom = !SYSTEM_KINDS[kind];
      const y = yMid(l) + (custom ? -Math.min(laneH * 0.22, 9) : 0);
      let sh = shape(kind, x, y);
      if (!sh) {
        sh = { d: "M" + x.toFixed(1) + "," + (y - 4.5).toFixed(1) + " l4.5,4.5 l-4.5,4.5 l-4.5,-4.5 z", fill: kindColor[P.k[i]], stroke: "#fff" };
      }
      s += '<path class="ev k-' + esc(kind) + '" data-i="' + i + '" d="' + sh.d + '" fill="' + sh.fill + '" stroke="' + sh.stroke + '"' + (sh.width ? ' stroke-width="' + sh.width + '"' : "") + "/>";
      if (labelled && kind !== "timer") {
        const text = eventLabel(i), w = text.length * 5.6;
        if (x - w / 2 > lastLabelEnd[l] + 4) {
          s += '<text class="ev-label" x="' + x.toFixed(1) + '" y="' + (y - 8).toFixed(1) + '" text-anchor="middle">' + esc(text) + "</text>";
          lastLabelEnd[l] = x + w / 2;
        }
      }
      pts.push({ i: i, x: x, y: y });
    }
    drawn.events = pts;
    return s + "</g>";
  }

  const plot = document.getElementById("plot");
  const wrap = document.getElementById("plot-wrap");
  function layout() {
    const width = Math.max(wrap.clientWidth || document.documentElement.clientWidth || 1000, 400);
    plotW = width - LABEL_W - PAD_R;
    const top = wrap.getBoundingClientRect().top + window.scrollY;
    const below = document.getElementById("legend").offsetHeight + 24;
    const avail = (window.innerHeight || 800) - top - below;
    laneH = Math.max(LANE_H_MIN, Math.min(LANE_H_MAX, Math.floor((avail - AXIS_H - 8) / Math.max(nLanes, 1))));
    plotH = AXIS_H + nLanes * laneH + 4;
    plot.setAttribute("height", plotH);
    plot.setAttribute("viewBox", "0 0 " + width + " " + plotH);
    wrap.style.maxHeight = Math.max(avail, 240) + "px";
  }

  function render() {
    const started = performance.now();
    clampView();
    const arrowsIn = arrowsInWindow(), pointsIn = pointsInWindow();
    const arrowsDraw = sampleTiered(arrowsIn, D.limits.arrows, function (i) { return (A.f[i] & 3) === 1 ? 0 : 1; },
      Math.floor(D.limits.arrows / 2));
    const pointsDraw = sampleTiered(pointsIn, D.limits.events, function (i) { return kindRank[P.k[i]]; },
      D.limits.events);
    hot = null;
    plot.innerHTML = markerDefs() + drawLanes() + drawAxis() + drawSpans() + drawArrows(arrowsDraw, arrowsDraw.length > DENSE_ARROWS) + drawEvents(pointsDraw) + drawStateLabels() + '<g id="hover"></g>';
    const ds = viewer.dataset;
    ds.windowStart = view.a; ds.windowEnd = view.b;
    ds.arrowsInWindow = arrowsIn.length; ds.arrowsDrawn = arrowsDraw.length;
    ds.eventsInWindow = pointsIn.length; ds.eventsDrawn = pointsDraw.length;
    const notice = document.getElementById("notice");
    const parts = [];
    if (arrowsDraw.length < arrowsIn.length) parts.push("showing " + arrowsDraw.length + " of " + arrowsIn.length + " messages (drops first)");
    if (pointsDraw.length < pointsIn.length) parts.push("showing " + pointsDraw.length + " of " + pointsIn.length + " events (timers last)");
    notice.hidden = parts.length === 0;
    notice.textContent = parts.length ? parts.join("; ") + " in this window, sampled evenly; zoom in to see all." : "";
    document.getElementById("window-label").textContent = "window " + fmtT(view.a) + " \u2013 " + fmtT(view.b) + " (" + fmtDur(view.b - view.a) + ")";
    syncSlider();
    drawOverviewBrush();
    ds.renderMs = (performance.now() - started).toFixed(1);
  }
  // One render per frame however many inputs arrive; the timeout covers
  // pages that get no frames (a background tab, a headless browser).
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    const run = function () { if (!pending) return; pending = false; render(); };
    window.requestAnimationFrame(run);
    window.setTimeout(run, 40);
  }

  // -- overview strip and slider -----------------------------------------------
  // The whole run, one row per lane: the darker a cell, the more that lane
  // sent, received or did then (timers not counted); drops as red ticks
  // below, crashes as red lines, the window as a blue box. Drag across the
  // strip to choose a window, drag the box to move it, click to center.
  const ov = document.getElementById("overview");
  const OV_ROWS_H = Math.max(14, Math.min(84, nLanes * 7)), OV_ROW = OV_ROWS_H / Math.max(nLanes, 1), OV_H = OV_ROWS_H + 8;
  ov.setAttribute("height", OV_H);
  function drawOverview() {
    const width = ov.clientWidth || plotW + LABEL_W, O = D.overview;
    const x0 = LABEL_W, w = width - LABEL_W - PAD_R, bw = w / O.bins;
    let max = 1;
    for (const row of O.lanes) for (const v of row) if (v > max) max = v;
    let s = '<rect x="' + x0 + '" y="0" width="' + w + '" height="' + OV_H + '" fill="#f4f5f7"/>';
    for (let l = 0; l < nLanes; l++) {
      const row = O.lanes[l], y = (l * OV_ROW).toFixed(1), h = Math.max(OV_ROW - (OV_ROW >= 4 ? 0.6 : 0), 1).toFixed(1);
      let k = 0;
      while (k < O.bins) {
        // Runs of equal shade become one rect: fewer elements.
        const a = row[k] ? Math.min(1, 0.12 + 0.88 * Math.sqrt(row[k] / max)) : 0;
        const shade = Math.round(a * 20);
        let e = k + 1;
        while (e < O.bins && Math.round((row[e] ? Math.min(1, 0.12 + 0.88 * Math.sqrt(row[e] / max)) : 0) * 20) === shade) e++;
        if (shade) s += '<rect class="ov-cell" x="' + (x0 + k * bw).toFixed(1) + '" y="' + y + '" width="' + ((e - k) * bw).toFixed(1) + '" height="' + h + '" fill="#1f5fa8" fill-opacity="' + (shade / 20).toFixed(2) + '"/>';
        k = e;
      }
      if (OV_ROW >= 6.5) s += '<text class="ov-lane" x="' + (x0 - 4) + '" y="' + (l * OV_ROW + OV_ROW - 1.5).toFixed(1) + '" text-anchor="end" font-size="' + Math.min(OV_ROW, 9).toFixed(0) + '">' + esc(D.lanes[l].length > 14 ? D.lanes[l].slice(0, 13) + "\u2026" : D.lanes[l]) + "</text>";
    }
    for (let k = 0; k < O.bins; k++) {
      if (O.drops[k]) s += '<rect x="' + (x0 + k * bw).toFixed(1) + '" y="' + (OV_ROWS_H + 2) + '" width="' + Math.max(bw, 1).toFixed(1) + '" height="5" fill="#d62728" opacity="0.75"/>';
    }
    for (const t of O.crashes) {
      const x = x0 + (t - t0) / (t1 - t0) * w;
      s += '<line x1="' + x.toFixed(1) + '" y1="0" x2="' + x.toFixed(1) + '" y2="' + OV_H + '" stroke="#c92a2a" stroke-width="1" opacity="0.45"/>';
    }
    for (const c of D.checks) {
      if (!c.focus) continue;
      const xa = x0 + (c.focus[0] - t0) / (t1 - t0) * w, xb = x0 + (c.focus[1] - t0) / (t1 - t0) * w;
      s += '<rect class="ov-failing" x="' + (xa - 1).toFixed(1) + '" y="0" width="' + Math.max(xb - xa + 2, 3).toFixed(1) + '" height="' + OV_H + '" fill="none" stroke="#e03131" stroke-width="2"/>';
    }
    if (OV_ROW < 6.5) s += '<text x="6" y="' + (OV_H / 2 + 4) + '" font-size="11" fill="#666">whole run</text>';
    else s += '<text x="6" y="' + (OV_H / 2 + 4) + '" font-size="10" fill="#888">whole run</text>';
    s += '<rect id="brush" y="0.5" height="' + (OV_H - 1) + '" fill="rgba(30,100,200,0.10)" stroke="#1c64c8" stroke-width="1.2"/>';
    s += '<rect id="brush-new" y="0.5" height="' + (OV_H - 1) + '" fill="rgba(240,140,0,0.15)" stroke="#e67700" stroke-width="1" visibility="hidden"/>';
    ov.setAttribute("viewBox", "0 0 " + width + " " + OV_H);
    ov.innerHTML = s;
    ov._geo = { x0: x0, w: w };
  }
  function drawOverviewBrush() {
    const b = document.getElementById("brush");
    if (!b || !ov._geo) return;
    const g = ov._geo, xa = g.x0 + (view.a - t0) / (t1 - t0) * g.w, xb = g.x0 + (view.b - t0) / (t1 - t0) * g.w;
    b.setAttribute("x", xa.toFixed(1));
    b.setAttribute("width", Math.max(xb - xa, 2).toFixed(1));
  }
  function overviewX(ev) {
    const r = ov.getBoundingClientRect();
    return (ev.clientX - r.left) * (ov.viewBox.baseVal.width / r.width);
  }
  function overviewT(x) {
    const g = ov._geo;
    return t0 + Math.max(0, Math.min(1, (x - g.x0) / g.w)) * (t1 - t0);
  }
  // ovDrag: {mode: "move" (the box), "select" (a new window), x, a, b}
  let ovDrag = null;
  function centerOn(t) { const w = view.b - view.a; view.a = t - w / 2; view.b = t + w / 2; schedule(); }
  ov.addEventListener("mousedown", function (ev) {
    const x = overviewX(ev), g = ov._geo;
    const xa = g.x0 + (view.a - t0) / (t1 - t0) * g.w, xb = g.x0 + (view.b - t0) / (t1 - t0) * g.w;
    const inBox = x >= xa - 2 && x <= xb + 2 && xb - xa < g.w - 4;
    ovDrag = { mode: inBox ? "move" : "select", x: x, a: view.a, b: view.b, moved: false };
    ev.preventDefault();
  });
  window.addEventListener("mousemove", function (ev) {
    if (!ovDrag) return;
    const x = overviewX(ev);
    if (Math.abs(x - ovDrag.x) > 3) ovDrag.moved = true;
    if (!ovDrag.moved) return;
    if (ovDrag.mode === "move") {
      const dt = (x - ovDrag.x) / ov._geo.w * (t1 - t0);
      view.a = ovDrag.a + dt; view.b = ovDrag.b + dt;
      schedule();
    } else {
      const nb = document.getElementById("brush-new"), lo = Math.min(x, ovDrag.x), hi = Math.max(x, ovDrag.x);
      nb.setAttribute("x", lo.toFixed(1)); nb.setAttribute("width", (hi - lo).toFixed(1));
      nb.setAttribute("visibility", "visible");
    }
  });
  window.addEventListener("mouseup", function (ev) {
    if (!ovDrag) return;
    const d = ovDrag, x = overviewX(ev);
    ovDrag = null;
    const nb = document.getElementById("brush-new");
    if (nb) nb.setAttribute("visibility", "hidden");
    if (!d.moved) { centerOn(overviewT(x)); return; }
    if (d.mode === "select") {
      const ta = overviewT(Math.min(x, d.x)), tb = overviewT(Math.max(x, d.x));
      if (tb > ta) { view.a = ta; view.b = tb; schedule(); }
    }
  });

  // -- checker verdicts: the failing operations, and a way to them --------------
  function checks() {
    const box = document.getElementById("check");
    if (!D.checks.length) return;
    const c = D.checks[0];
    let s = '<b>' + esc(c.checker) + ": " + esc(c.verdict) + "</b>";
    if (c.text) s += " \u2014 " + esc(c.text);
    if (c.ops) s += ' <span class="check-ops">' + c.ops + " client operation" + (c.ops === 1 ? "" : "s") + " of the failing window are outlined in red (thick: the one the checker could not place)</span>";
    if (c.focus) s += ' <button type="button" id="show-failing">show them</button>';
    box.innerHTML = s;
    box.hidden = false;
    viewer.dataset.failingOps = c.ops;
    const btn = document.getElementById("show-failing");
    if (btn) btn.addEventListener("click", function () { showFailing(); schedule(); });
  }
  function showFailing() {
    const c = D.checks[0], w = c.focus || c.window;
    const pad = Math.max((w[1] - w[0]) * 1.5, (t1 - t0) / 500);
    view.a = w[0] - pad; view.b = w[1] + pad;
  }

  const slider = document.getElementById("slider");
  function syncSlider() {
    const free = (t1 - t0) - (view.b - view.a);
    slider.disabled = free <= 0;
    slider.value = free > 0 ? Math.round((view.a - t0) / free * 1000) : 0;
  }
  slider.addEventListener("input", function () {
    const w = view.b - view.a, free = (t1 - t0) - w;
    view.a = t0 + free * (+slider.value / 1000);
    view.b = view.a + w;
    schedule();
  });

  // -- zoom and pan ----------------------------------------------------------
  function zoom(factor, tCenter) {
    const c = tCenter === undefined ? (view.a + view.b) / 2 : tCenter;
    const w = Math.max((view.b - view.a) * factor, minSpan);
    const frac = (c - view.a) / (view.b - view.a);
    view.a = c - frac * w;
    view.b = view.a + w;
    schedule();
  }
  function pan(frac) { const d = (view.b - view.a) * frac; view.a += d; view.b += d; schedule(); }
  document.getElementById("zoom-in").addEventListener("click", function () { zoom(0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoom(2); });
  document.getElementById("fit").addEventListener("click", function () { view.a = t0; view.b = t1; schedule(); });
  function svgX(ev) {
    const r = plot.getBoundingClientRect();
    return (ev.clientX - r.left) * (plot.viewBox.baseVal.width / r.width);
  }
  function svgY(ev) {
    const r = plot.getBoundingClientRect();
    return (ev.clientY - r.top) * (plot.viewBox.baseVal.height / r.height);
  }
  plot.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    const x = svgX(ev);
    if (Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) { pan(ev.deltaX / plotW); return; }
    zoom(Math.exp(ev.deltaY * 0.0015), x >= LABEL_W ? tOf(x) : undefined);
  }, { passive: false });
  let drag = null;
  plot.addEventListener("mousedown", function (ev) {
    drag = { x: ev.clientX, a: view.a, b: view.b, scale: plot.viewBox.baseVal.width / plot.getBoundingClientRect().width };
    plot.classList.add("dragging");
    ev.preventDefault();
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    const dt = (ev.clientX - drag.x) * drag.scale / plotW * (drag.b - drag.a);
    view.a = drag.a - dt; view.b = drag.b - dt;
    schedule();
  });
  window.addEventListener("mouseup", function () { drag = null; plot.classList.remove("dragging"); });
  window.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "INPUT" && ev.target.type !== "checkbox") return;
    if (ev.key === "+" || ev.key === "=") zoom(0.5);
    else if (ev.key === "-" || ev.key === "_") zoom(2);
    else if (ev.key === "0") { view.a = t0; view.b = t1; schedule(); }
    else if (ev.key === "ArrowLeft") pan(-0.25);
    else if (ev.key === "ArrowRight") pan(0.25);
  });
  document.querySelectorAll("[data-show]").forEach(function (box) {
    box.addEventListener("change", function () { show[box.dataset.show] = box.checked; schedule(); });
  });

  // -- hovering ----------------------------------------------------------------
  const tip = document.getElementById("tooltip");
  function segDist(px, py, g) {
    const dx = g[2] - g[0], dy = g[3] - g[1], len2 = dx * dx + dy * dy;
    let u = len2 ? ((px - g[0]) * dx + (py - g[1]) * dy) / len2 : 0;
    u = Math.max(0, Math.min(1, u));
    const qx = g[0] + u * dx - px, qy = g[1] + u * dy - py;
    return Math.sqrt(qx * qx + qy * qy);
  }
  function hit(x, y) {
    let best = null, bestD = 7;
    for (const e of drawn.events) {
      const d = Math.hypot(e.x - x, e.y - y);
      if (d < bestD) { bestD = d; best = { what: "event", i: e.i }; }
    }
    if (best) return best;
    bestD = 5;
    for (const a of drawn.arrows) {
      const d = segDist(x, y, a.g);
      if (d < bestD) { bestD = d; best = { what: "arrow", i: a.i }; }
    }
    if (best) return best;
    for (let k = drawn.rects.length - 1; k >= 0; k--) {
      const r = drawn.rects[k];
      if (x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h) return { what: r.what, i: r.i, rect: r };
    }
    return null;
  }
  function det(i) { return i >= 0 ? '<pre>' + esc(D.details[i]) + "</pre>" : ""; }
  function describe(h) {
    const L = D.lanes;
    if (h.what === "arrow") {
      const i = h.i, st = A.f[i] & 3;
      let sub = "sent " + fmtT(A.ts[i]) + " by " + L[A.s[i]];
      if (st === 0) sub += " \u00b7 received " + fmtT(A.te[i]) + " (" + fmtDur(A.te[i] - A.ts[i]) + ")";
      else if (st === 1) sub += (A.f[i] & 8 ? " \u00b7 lost on the way (dropped when sent)" : " \u00b7 dropped on arrival " + fmtT(A.te[i]));
      else sub += " \u00b7 still in flight when the trace ends";
      if (A.f[i] & 4) sub += " \u00b7 duplicate delivery";
      return '<div class="head">' + esc(D.types[A.y[i]]) + "  " + esc(L[A.s[i]]) + " \u2192 " + esc(L[A.d[i]]) + '</div><div class="sub">' + esc(sub) + "</div>" + det(A.ds[i]) + det(A.de[i]);
    }
    if (h.what === "event") {
      const i = h.i;
      return '<div class="head">' + esc(D.kinds[P.k[i]]) + " on " + esc(L[P.l[i]]) + '</div><div class="sub">at ' + esc(fmtT(P.t[i])) + "</div>" + det(P.dt[i]);
    }
    if (h.what === "interval") {
      const iv = D.intervals[h.i];
      return '<div class="head">' + esc(L[iv[0]]) + (iv[3] === 0 ? " down" : " paused") + '</div><div class="sub">' + esc(fmtT(iv[1])) + " \u2013 " + esc(fmtT(iv[2])) + " (" + fmtDur(iv[2] - iv[1]) + (iv[4] ? ", until the trace ends" : "") + ")</div>" + det(iv[5]) + det(iv[6]);
    }
    if (h.what === "state") {
      const st = D.states[h.i];
      return '<div class="head">' + esc(L[st[0]]) + ": " + esc(st[3]) + (st[4] !== "" ? ", term " + esc(st[4]) : "") + '</div><div class="sub">' + esc(fmtT(st[1])) + " \u2013 " + esc(fmtT(st[2])) + "</div>" + det(st[5]);
    }
    if (h.what === "op") {
      const op = D.ops[h.i];
      const role = op[8] === "stuck" ? " \u00b7 the checker could not place this operation" :
        op[8] ? " \u00b7 in the checker's failing window" : "";
      return '<div class="head">client op ' + esc(op[5]) + " on " + esc(L[op[0]]) + '</div><div class="sub">' + esc((op[4] || "no completion (pending)") + role) + " \u00b7 " + esc(fmtT(op[2])) + " \u2013 " + esc(fmtT(op[3])) + "</div>" + det(op[6]) + det(op[7]);
    }
    if (h.what === "band") {
      const b = D.bands[h.i];
      return '<div class="head">' + esc(b[3]) + '</div><div class="sub">' + esc(fmtT(b[1])) + " \u2013 " + esc(fmtT(b[2])) + "</div>" + det(b[4]) + det(b[5]);
    }
    return "";
  }
  function highlight(h) {
    const old = plot.querySelectorAll(".hot");
    old.forEach(function (e) { e.classList.remove("hot"); });
    const layer = document.getElementById("hover");
    if (layer) layer.innerHTML = "";
    if (!h) return;
    if (h.what === "arrow" || h.what === "event") {
      plot.querySelectorAll((h.what === "arrow" ? ".msg" : ".ev") + '[data-i="' + h.i + '"]').forEach(function (e) { e.classList.add("hot"); });
    } else if (h.rect && layer) {
      layer.innerHTML = '<rect class="hover-rect" x="' + h.rect.x + '" y="' + h.rect.y + '" width="' + h.rect.w + '" height="' + h.rect.h + '"/>';
    }
  }
  plot.addEventListener("mousemove", function (ev) {
    const x = svgX(ev), y = svgY(ev);
    document.getElementById("cursor-label").textContent = x >= LABEL_W ? "cursor " + fmtT(tOf(x)) : "";
    if (drag) { tip.hidden = true; return; }
    const h = x >= LABEL_W ? hit(x, y) : null;
    const key = h ? h.what + h.i : null;
    if (key !== hot) { hot = key; highlight(h); }
    if (!h) { tip.hidden = true; return; }
    tip.innerHTML = describe(h);
    tip.hidden = false;
    const pad = 14, tw = tip.offsetWidth, th = tip.offsetHeight;
    let left = ev.clientX + pad, top = ev.clientY + pad;
    if (left + tw > window.innerWidth - 4) left = ev.clientX - tw - pad;
    if (top + th > window.innerHeight - 4) top = Math.max(4, ev.clientY - th - pad);
    tip.style.left = left + "px"; tip.style.top = top + "px";
  });
  plot.addEventListener("mouseleave", function () { tip.hidden = true; hot = null; highlight(null); });

  // -- legend and summary ------------------------------------------------------
  function legend() {
    const box = document.getElementById("legend");
    const typeCounts = new Array(D.types.length).fill(0);
    for (let i = 0; i < nA; i++) typeCounts[A.y[i]]++;
    const kindCounts = new Array(D.kinds.length).fill(0);
    for (let i = 0; i < nP; i++) kindCounts[P.k[i]]++;
    let s = "";
    if (D.types.length) s += '<span class="group">messages</span>';
    D.types.forEach(function (t, k) {
      s += '<span class="item toggle" data-type="' + k + '" title="click to hide or show"><svg width="22" height="8"><line x1="0" y1="4" x2="22" y2="4" stroke="' + PALETTE[k % PALETTE.length] + '" stroke-width="2"/></svg>' + esc(t) + " (" + typeCounts[k] + ")</span>";
    });
    if (D.stats.dropped) s += '<span class="item"><svg width="22" height="10"><line x1="0" y1="5" x2="16" y2="5" stroke="#d62728" stroke-dasharray="4 2" stroke-width="1.5"/><path d="M13,1 L21,9 M13,9 L21,1" stroke="#d62728" stroke-width="2"/></svg>dropped (' + D.stats.dropped + ")</span>";
    if (D.kinds.length) s += '<span class="group">events</span>';
    D.kinds.forEach(function (k, idx) {
      let sh = shape(k, 8, 6);
      if (!sh) sh = { d: "M8,1.5 l4.5,4.5 l-4.5,4.5 l-4.5,-4.5 z", fill: kindColor[idx], stroke: "#fff" };
      s += '<span class="item"><svg width="16" height="12"><path d="' + sh.d + '" fill="' + sh.fill + '" stroke="' + sh.stroke + '"' + (sh.width ? ' stroke-width="' + Math.min(sh.width, 2) + '"' : "") + '/></svg>' + esc(k) + " (" + kindCounts[idx] + ")</span>";
    });
    if (D.intervals.length) {
      s += '<span class="item"><svg width="22" height="12"><rect width="22" height="12" style="fill:rgba(120,120,120,0.4)"/></svg>down</span>';
      if (D.intervals.some(function (iv) { return iv[3] === 1; })) s += '<span class="item"><svg width="22" height="12"><rect width="22" height="12" style="fill:rgba(255,214,80,0.5)"/></svg>paused</span>';
    }
    const roles = [];
    D.states.forEach(function (st) { if (roles.indexOf(st[3]) < 0) roles.push(st[3]); });
    if (roles.length) s += '<span class="group">roles</span>';
    roles.forEach(function (r) { s += '<span class="item"><svg width="22" height="10"><rect width="22" height="10" fill="' + roleColor(r) + '"/></svg>' + esc(r) + "</span>"; });
    if (D.ops.length) {
      s += '<span class="group">client ops</span>';
      [["ok", "#7fcf8a"], ["fail", "#f08c8c"], ["info", "#f5c26b"], ["pending", "#d6d6d6"]].forEach(function (p) {
        s += '<span class="item"><svg width="22" height="8"><rect width="22" height="8" fill="' + p[1] + '"/></svg>' + p[0] + "</span>";
      });
      if (D.ops.some(function (op) { return op[8]; })) s += '<span class="item"><svg width="22" height="8"><rect width="22" height="8" fill="#fff" stroke="#e03131" stroke-width="2"/></svg>in the checker\'s failing window</span>';
    }
    box.innerHTML = s;
    box.querySelectorAll("[data-type]").forEach(function (el) {
      el.addEventListener("click", function () {
        const k = +el.dataset.type;
        if (hiddenTypes.has(k)) hiddenTypes.delete(k); else hiddenTypes.add(k);
        el.classList.toggle("off", hiddenTypes.has(k));
        schedule();
      });
    });
  }

  function summary() {
    const st = D.stats;
    document.getElementById("title").textContent = D.title;
    document.title = D.title;
    // Each message sent is counted once, by its fate, so the parts add up
    // to the total; the network's extra copies are counted apart.
    const reasons = Object.keys(st.dropped_by).map(function (r) { return st.dropped_by[r] + " " + r; });
    let msgs = st.messages + " messages sent: " + st.delivered + " delivered, " + st.dropped + " dropped" +
      (reasons.length > 1 || (reasons.length && reasons[0].indexOf("unknown") < 0) ? " (" + reasons.join(", ") + ")" : "");
    if (st.in_flight) msgs += ", " + st.in_flight + " in flight at the end";
    const parts = [nLanes + " lanes", st.records + " trace lines", "run " + fmtDur(t1 - t0), msgs];
    if (st.duplicates) parts.push("and " + st.duplicates + " network duplicates (" + st.duplicates_delivered + " delivered, " + st.duplicates_dropped + " dropped)");
    if (st.orphans) parts.push(st.orphans + " unmatched recv/drop");
    if (origin) parts.push("times count from t_ms " + origin);
    if (D.source) parts.push(D.source);
    document.getElementById("summary").textContent = parts.join(" \u00b7 ");
    const ds = viewer.dataset;
    ds.lanes = nLanes; ds.arrowsTotal = nA; ds.messagesTotal = st.messages;
    ds.deliveredTotal = st.delivered; ds.droppedTotal = st.dropped; ds.inflightTotal = st.in_flight;
    ds.duplicatesTotal = st.duplicates; ds.eventsTotal = nP;
    checks();
  }

  // The whole run, unless it has too many messages to read at once: then its
  // start (the overview strip shows where the window is). A link may name a
  // window: page.html#window=START,END (ms, as the axis shows them).
  function initialWindow() {
    const m = /(?:^|[#&])window=([-0-9.e]+),([-0-9.e]+)/.exec(window.location.hash);
    if (m && +m[2] > +m[1]) { view.a = +m[1] + origin; view.b = +m[2] + origin; return; }
    // A failed check opens on its failing operations (#failing asks for
    // them in any case): that is what the reader came for; "fit" shows all.
    const failed = D.checks.length && D.checks[0].focus && (D.checks[0].verdict === "illegal" || /(?:^|[#&])failing\b/.test(window.location.hash));
    if (failed) { showFailing(); return; }
    if (nA > INITIAL_ARROWS_MAX) {
      view.a = t0;
      view.b = Math.max(A.ts[INITIAL_ARROWS_SHOWN], t0 + (t1 - t0) / 1000);
    }
  }

  const loadStarted = performance.now();
  summary();
  legend();
  initialWindow();
  layout();
  drawOverview();
  render();
  window.addEventListener("resize", function () { layout(); drawOverview(); schedule(); });
  viewer.dataset.loadMs = (performance.now() - loadStarted).toFixed(1);
  viewer.dataset.status = "ready";
})();
