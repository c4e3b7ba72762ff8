// The overview's chart, drawn as SVG: two panels over one time axis. Above, the events
// accepted (a line on its own value axis); below, the deliveries per bucket (stacked bars:
// delivered, failed, dead-lettered) on theirs. The time axis runs from the first bucket to
// now, so the current bucket is as wide as the part of it that has passed.

import { el, svg, when } from "./dom.js";

const OUTCOMES = [
  ["delivered", "Delivered"],
  ["failed", "Failed (will retry)"],
  ["deadLettered", "Dead-lettered"],
];
const LEFT = 44;
const RIGHT = 14;
const EVENTS = { title: 12, top: 22, bottom: 72 };
const BARS = { title: 94, top: 104, bottom: 224 };
const HEIGHT = 246;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

// The smallest round number at or above `value` whose half is a whole number too (or 1).
function roundUp(value) {
  if (value <= 1) return 1;
  if (value <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 4, 5, 6, 8, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function valueAxis(panel, top, className, right) {
  const y = (v) => panel.bottom - (v / top) * (panel.bottom - panel.top);
  const ticks = top % 2 === 0 ? [0, top / 2, top] : [0, top];
  return svg(
    "g",
    { class: `y-axis ${className}` },
    ticks.map((v) => [
      svg("line", { class: "grid", x1: LEFT, x2: right, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: LEFT - 6, y: y(v) + 4, "text-anchor": "end" }, String(v)),
    ]),
  );
}

function clock(t, withDay) {
  const options = { hour: "2-digit", minute: "2-digit" };
  if (withDay) options.weekday = "short";
  return new Date(t).toLocaleTimeString([], options);
}

export function chart(stats, now) {
  const main = document.getElementById("main");
  // drawn at the width it is shown at, so its text keeps its size on a phone
  const width = Math.round(Math.max(300, Math.min(720, (main?.clientWidth || 720) - 40)));
  const plot = width - LEFT - RIGHT;
  const points = stats.series;
  const bucket = stats.bucketSeconds * 1000;
  const unit = stats.bucketSeconds === 60 ? "minute" : "hour";
  const start = points.length ? Date.parse(points[0].start) : now.getTime() - 60 * bucket;
  const end = Math.max(now.getTime(), points.length ? Date.parse(points[points.length - 1].start) + 1000 : start + 1000);
  const x = (t) => LEFT + ((Math.min(t, end) - start) / (end - start)) * plot;

  const total = (key) => points.reduce((sum, p) => sum + p[key], 0);
  const summary =
    `Deliveries per ${unit} from ${when(new Date(start).toISOString())} to now: ` +
    `${total("delivered")} delivered, ${total("failed")} failed, ${total("deadLettered")} dead-lettered, ` +
    `${total("accepted")} events accepted`;

  const barsTop = roundUp(Math.max(1, ...points.map((p) => p.delivered + p.failed + p.deadLettered)));
  const barY = (v) => ((BARS.bottom - BARS.top) * v) / barsTop;
  const bars = points.map((p) => {
    const from = Date.parse(p.start);
    // the current bucket is as wide as the part of it that has passed, but never thinner
    // than a visible bar: it ends at now either way
    const w = Math.max(3, x(from + bucket) - x(from) - 1);
    const x0 = Math.min(x(from), LEFT + plot - w - 0.5);
    let y = BARS.bottom;
    return OUTCOMES.filter(([key]) => p[key] > 0).map(([key, label]) => {
      const h = barY(p[key]);
      y -= h;
      return svg(
        "rect",
        { x: x0 + 0.5, y, width: w, height: h, class: `bar ${key}` },
        svg("title", {}, `${when(p.start)}: ${p[key]} ${label.toLowerCase()}`),
      );
    });
  });

  const acceptedTop = roundUp(Math.max(1, ...points.map((p) => p.accepted)));
  const lineY = (v) => EVENTS.bottom - (v / acceptedTop) * (EVENTS.bottom - EVENTS.top);
  const accepted = svg("polyline", {
    class: "accepted",
    points: points
      .map((p) => {
        const from = Date.parse(p.start);
        return `${((x(from) + x(from + bucket)) / 2).toFixed(1)},${lineY(p.accepted).toFixed(1)}`;
      })
      .join(" "),
  });

  // time ticks on round clock times, at least ~70 px apart, leaving room for "now"
  const steps = unit === "minute" ? [5, 10, 15, 20, 30].map((m) => m * MINUTE) : [1, 2, 3, 4, 6, 12].map((h) => h * HOUR);
  const step = steps.find((s) => (s / (end - start)) * plot >= 70) || steps[steps.length - 1];
  const offset = -new Date(start).getTimezoneOffset() * MINUTE; // round in local time
  const ticks = [];
  for (let t = Math.ceil((start + offset) / step) * step - offset; t < end; t += step) {
    if (x(t) <= LEFT + plot - 50) ticks.push(t);
  }
  const timeAxis = svg(
    "g",
    { class: "x-axis" },
    svg("line", { class: "axis", x1: LEFT, x2: LEFT + plot, y1: BARS.bottom, y2: BARS.bottom }),
    ticks.map((t) => [
      svg("line", { class: "axis", x1: x(t), x2: x(t), y1: BARS.bottom, y2: BARS.bottom + 4 }),
      svg("text", { class: "tick time", x: x(t), y: BARS.bottom + 17, "text-anchor": "middle" }, clock(t, unit === "hour" && new Date(t).getHours() === 0)),
    ]),
    svg("line", { class: "axis", x1: LEFT + plot, x2: LEFT + plot, y1: BARS.bottom, y2: BARS.bottom + 4 }),
    svg("text", { class: "tick time now", x: LEFT + plot, y: BARS.bottom + 17, "text-anchor": "end" }, "now"),
  );

  return el(
    "figure",
    { class: "chart-figure" },
    svg(
      "svg",
      {
        viewBox: `0 0 ${width} ${HEIGHT}`,
        width,
        height: HEIGHT,
        role: "img",
        "aria-label": summary,
        class: "chart",
        "data-start": new Date(start).toISOString(),
        "data-end": new Date(end).toISOString(),
      },
      svg(
        "g",
        { class: "panel events" },
        svg("text", { class: "axis-title", x: 0, y: EVENTS.title }, `Events accepted per ${unit}`),
        valueAxis(EVENTS, acceptedTop, "events", LEFT + plot),
        accepted,
      ),
      svg(
        "g",
        { class: "panel deliveries" },
        svg("text", { class: "axis-title", x: 0, y: BARS.title }, `Deliveries per ${unit}`),
        valueAxis(BARS, barsTop, "deliveries", LEFT + plot),
        bars,
      ),
      timeAxis,
    ),
    el(
      "figcaption",
      {},
      summary,
      el(
        "ul",
        { class: "legend" },
        OUTCOMES.map(([key, label]) => el("li", { class: key }, label)),
        el("li", { class: "accepted" }, "Events accepted (upper panel)"),
      ),
    ),
  );
}
