// Line charts in SVG, drawn here from /api/history (no charting library). Every label is textContent.
// drawChart(figure, series, options): `series` is [{name, values: [number|null]}] over the shared `times`
// (epoch seconds); a null breaks the line. The <svg> and each <path> carry data-* attributes saying what
// they show, so a test (or a curious person) can read the figures back.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { width: 640, height: 180, left: 56, right: 12, top: 10, bottom: 24 };

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// The smallest of 1, 2, 2.5, 5 x 10^n at or above `value`: a round top for the y axis.
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function clockTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function drawChart(figure, times, series, { unit = "", format = (v) => String(v), empty = "no samples yet" } = {}) {
  const { width, height, left, right, top, bottom } = CHART;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart",
    "data-points": times.length, "data-series": series.map((s) => s.name).join(","),
  });
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const top_ = niceCeiling(Math.max(0, ...values));
  root.setAttribute("data-max", String(top_));
  const title = svg("title", {}, figure.dataset.title + (times.length ? "" : ": " + empty));
  root.append(title);

  // Grid and y labels: 0, half, top.
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotH * (1 - fraction);
    root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid" }));
    root.append(svg("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, format(top_ * fraction) + unit));
  }
  if (times.length === 0) {
    root.append(svg("text", { x: left + plotW / 2, y: top + plotH / 2, class: "axis", "text-anchor": "middle" }, empty));
  } else {
    const t0 = times[0];
    const t1 = times[times.length - 1];
    const spanT = Math.max(t1 - t0, 1e-9);
    const x = (t) => (times.length === 1 ? left + plotW : left + (plotW * (t - t0)) / spanT);
    const y = (v) => top + plotH * (1 - v / top_);
    root.append(svg("text", { x: left, y: height - 6, class: "axis" }, clockTime(t0)));
    root.append(svg("text", { x: width - right, y: height - 6, class: "axis", "text-anchor": "end" }, clockTime(t1)));
    series.forEach((s, index) => {
      let d = "";
      let drawing = false;
      let drawn = 0;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined || !Number.isFinite(v)) { drawing = false; return; }
        d += (drawing ? " L" : " M") + x(times[i]).toFixed(1) + " " + y(v).toFixed(1);
        drawing = true;
        drawn += 1;
      });
      const last = [...s.values].reverse().find((v) => v !== null && v !== undefined);
      const path = svg("path", {
        d: d.trim() || "M 0 0", class: "line series-" + (index % 8), "data-series": s.name,
        "data-points": drawn, "data-last": last === undefined ? "" : String(last),
      });
      path.append(svg("title", {}, s.name));
      root.append(path);
      // A point with no neighbour draws no line: a dot shows it (sparse series, e.g. latency of rare commits).
      s.values.forEach((v, i) => {
        const alone = (j) => j < 0 || j >= s.values.length || s.values[j] === null || s.values[j] === undefined;
        if (v !== null && v !== undefined && Number.isFinite(v) && alone(i - 1) && alone(i + 1)) {
          root.append(svg("circle", { cx: x(times[i]).toFixed(1), cy: y(v).toFixed(1), r: 2.5, class: "dot series-" + (index % 8) }));
        }
      });
    });
  }
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, index) => {
    const last = [...s.values].reverse().find((v) => v !== null && v !== undefined);
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch series-" + (index % 8);
    item.append(swatch, s.name + " " + (last === undefined ? "–" : format(last) + unit));
    legend.append(item);
  });
  figure.querySelector(".plot").replaceChildren(root, legend);
}

function renderHistory(history) {
  const points = history.points || [];
  const times = points.map((p) => p.at);
  const note = document.querySelector("#history-note");
  note.hidden = history.interval !== null && points.length > 0;
  note.textContent = history.interval === null
    ? "No worker in this process (a read replica): no history to chart."
    : "Sampled every " + history.interval + " s; the charts fill in as samples arrive.";
  const rate = ["read", "applied", "stale", "dead_lettered"].map((name) => ({
    name, values: points.map((p) => p.rate[name]),
  }));
  const perSecond = (v) => (v >= 100 ? Math.round(v).toString() : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  drawChart(document.querySelector("#chart-rate"), times, rate, { unit: "/s", format: perSecond });

  const partitions = [...new Set(points.flatMap((p) => Object.keys(p.lag)))]
    .sort((a, b) => a.length - b.length || a.localeCompare(b));
  const lag = partitions.map((pid) => ({
    name: "partition " + pid, values: points.map((p) => (pid in p.lag ? p.lag[pid] : null)),
  }));
  drawChart(document.querySelector("#chart-lag"), times, lag, { format: (v) => Math.round(v).toString(), empty: "no partitions owned" });

  const latency = ["p50", "p99", "mean"].map((name) => ({ name, values: points.map((p) => p.latency[name]) }));
  const secondsLabel = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
  drawChart(document.querySelector("#chart-latency"), times, latency, { unit: " s", format: secondsLabel });
}
