// The operator's views (admin key): overview, partners, deliveries, events, event types.

import { api, query } from "./api.js";
import { button, el, ms, notice, show, svg, table, when } from "./dom.js";

const OUTCOMES = [
  ["delivered", "Delivered"],
  ["failed", "Failed (will retry)"],
  ["deadLettered", "Dead-lettered"],
];

export const nav = [
  ["#/", "Overview"],
  ["#/partners", "Partners"],
  ["#/deliveries", "Deliveries"],
  ["#/event-types", "Event types"],
];

export const routes = [
  [/^#\/?$/, overview],
  [/^#\/overview\/(hour|day)$/, overview],
  [/^#\/partners$/, partners],
  [/^#\/partners\/([^/?]+)$/, partnerPage],
  [/^#\/deliveries(\?.*)?$/, deliveries],
  [/^#\/events\/([^/?]+)$/, eventPage],
  [/^#\/event-types$/, eventTypes],
];

function chart(stats) {
  const width = 720;
  const height = 180;
  const points = stats.series;
  const top = Math.max(1, ...points.map((p) => p.delivered + p.failed + p.deadLettered));
  const step = width / points.length;
  const unit = stats.bucketSeconds === 60 ? "minute" : "hour";
  const total = (key) => points.reduce((sum, p) => sum + p[key], 0);
  const span = points.length ? `${when(points[0].start)} to ${when(points[points.length - 1].start)}` : "";
  const summary = `Deliveries per ${unit}, ${span}: ${total("delivered")} delivered, ${total("failed")} failed, ${total("deadLettered")} dead-lettered, ${total("accepted")} events accepted`;
  const bars = points.map((p, index) => {
    let y = height;
    return OUTCOMES.map(([key, label]) => {
      const h = (p[key] / top) * (height - 10);
      y -= h;
      return svg(
        "rect",
        { x: index * step + 1, y, width: Math.max(1, step - 2), height: h, class: `bar ${key}` },
        svg("title", {}, `${when(p.start)}: ${p[key]} ${label.toLowerCase()}`),
      );
    });
  });
  // events accepted per bucket: a line over the bars, on its own scale
  const acceptedTop = Math.max(1, ...points.map((p) => p.accepted));
  const accepted = svg("polyline", {
    class: "accepted",
    points: points.map((p, i) => `${i * step + step / 2},${height - (p.accepted / acceptedTop) * (height - 10)}`).join(" "),
  });
  return el(
    "figure",
    {},
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary, class: "chart" }, bars, accepted),
    el(
      "figcaption",
      {},
      summary,
      el(
        "ul",
        { class: "legend" },
        OUTCOMES.map(([key, label]) => el("li", { class: key }, label)),
        el("li", { class: "accepted" }, `Events accepted (line, up to ${acceptedTop} per ${unit})`),
      ),
    ),
  );
}

async function overview(window = "hour") {
  const stats = await api(`/admin/stats${query({ window })}`);
  const attention = stats.partners.filter((p) => p.endpoint.consecutiveFailures > 0 || p.endpoint.status === "disabled");
  show(
    el("h1", {}, "Overview"),
    el(
      "p",
      { class: "toolbar" },
      el("a", { href: "#/overview/hour", "aria-current": window === "hour" ? "page" : null }, "Last hour"),
      " · ",
      el("a", { href: "#/overview/day", "aria-current": window === "day" ? "page" : null }, "Last day"),
    ),
    chart(stats),
    el("h2", {}, "Needs attention"),
    attention.length
      ? el(
          "ul",
          { class: "attention" },
          attention.map((p) =>
            el(
              "li",
              {},
              el("a", { href: `#/partners/${encodeURIComponent(p.partnerId)}` }, p.name),
              ` — ${p.endpoint.consecutiveFailures} failures in a row since ${when(p.endpoint.failingSince)}`,
              p.endpoint.status === "disabled" ? `; endpoint disabled, ${p.parked} deliveries parked` : "",
            ),
          ),
        )
      : notice("Every endpoint is answering.", "ok"),
    table(
      `Per partner, last ${window}`,
      ["Partner", "Delivered", "Failed", "Dead-lettered", "Latency p50", "Latency p95", "Endpoint"],
      stats.partners.map((p) =>
        el(
          "tr",
          {},
          el("td", {}, el("a", { href: `#/partners/${encodeURIComponent(p.partnerId)}` }, p.name)),
          el("td", {}, p.delivered),
          el("td", {}, p.failed),
          el("td", {}, p.deadLettered),
          el("td", {}, ms(p.latencyP50Ms)),
          el("td", {}, ms(p.latencyP95Ms)),
          el("td", {}, health(p.endpoint)),
        ),
      ),
    ),
  );
}

function health(endpoint) {
  if (endpoint.status === "disabled") return el("span", { class: "badge bad" }, "disabled");
  if (endpoint.consecutiveFailures > 0) return el("span", { class: "badge warn" }, `failing (${endpoint.consecutiveFailures})`);
  return el("span", { class: "badge ok" }, "healthy");
}

async function partners() {
  const { partners: list } = await api("/admin/partners");
  show(
    el("h1", {}, "Partners"),
    table(
      "Partners",
      ["Name", "Active", "Endpoint", "Failing since", "Rate limit", "Subscriptions"],
      list.map((p) =>
        el(
          "tr",
          {},
          el("td", {}, el("a", { href: `#/partners/${encodeURIComponent(p.partnerId)}` }, p.name)),
          el("td", {}, p.isActive ? "yes" : "no"),
          el("td", {}, health(p.endpoint)),
          el("td", {}, when(p.endpoint.failingSince)),
          el("td", {}, p.rateLimit ? `${p.rateLimit}/s` : "none"),
          el("td", {}, (p.events || []).join(", ") || "—"),
        ),
      ),
    ),
  );
}

async function partnerPage(id) {
  const p = await api(`/admin/partners/${encodeURIComponent(id)}`);
  const { deliveries: recent } = await api(`/admin/partners/${encodeURIComponent(id)}/deliveries?limit=20`);
  const result = el("div", { "aria-live": "polite" });
  const act = (label, run) =>
    button(label, async () => {
      try {
        result.replaceChildren(await run());
      } catch (error) {
        result.replaceChildren(notice(`${label} failed: ${error.message}`));
      }
    });
  const since = el("input", { id: "recover-since", type: "datetime-local", required: true });
  show(
    el("h1", {}, p.name),
    el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Webhook URL"), el("dd", {}, p.webhookUrl),
      el("dt", {}, "Active"), el("dd", {}, p.isActive ? "yes" : "no"),
      el("dt", {}, "Endpoint"), el("dd", {}, health(p.endpoint), ` ${p.endpoint.disabledReason || ""}`),
      el("dt", {}, "Failing since"), el("dd", {}, when(p.endpoint.failingSince)),
      el("dt", {}, "Parked deliveries"), el("dd", {}, p.endpoint.parkedDeliveries ?? 0),
      el("dt", {}, "Custom headers"), el("dd", {}, Object.keys(p.headers || {}).join(", ") || "none"),
      el("dt", {}, "Timeout"), el("dd", {}, p.timeoutMs ? `${p.timeoutMs} ms` : "default"),
      el("dt", {}, "Rate limit"), el("dd", {}, p.rateLimit ? `${p.rateLimit}/s` : "none"),
      el("dt", {}, "Subscriptions"), el("dd", {}, (p.events || []).join(", ") || "none"),
    ),
    el(
      "div",
      { class: "actions" },
      act("Send test event", async () => {
        const sent = await api(`/admin/partners/${encodeURIComponent(id)}/test`, { method: "POST" });
        return notice(`Test event ${(sent.enqueued || []).join(", ")} sent.`, "ok");
      }),
      act("Rotate secret", async () => {
        const rotated = await api(`/admin/partners/${encodeURIComponent(id)}/rotate-secret`, { method: "POST" });
        // shown once, here only: never stored, never shown again
        return el("p", { class: "notice ok", role: "status" }, "New secret (shown once): ", el("code", {}, rotated.secretKey));
      }),
      p.endpoint.status === "disabled"
        ? act("Enable endpoint", async () => {
            await api(`/admin/partners/${encodeURIComponent(id)}/endpoint/enable`, { method: "POST" });
            return notice("Endpoint enabled; parked deliveries are on their way.", "ok");
          })
        : null,
      p.isActive
        ? act("Deactivate", async () => {
            if (!confirm(`Deactivate ${p.name}? It will receive nothing until activated again.`)) return notice("Not deactivated.", "ok");
            await api(`/admin/partners/${encodeURIComponent(id)}`, { method: "PATCH", body: { isActive: false } });
            return notice("Deactivated.", "ok");
          })
        : null,
    ),
    el(
      "form",
      {
        class: "inline",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const done = await api(`/admin/partners/${encodeURIComponent(id)}/recover`, {
              method: "POST",
              body: { since: new Date(since.value).toISOString() },
            });
            result.replaceChildren(notice(`Recovery: ${done.enqueued.length} resent${done.remaining ? `, ${done.remaining} left for the next call` : ""}.`, "ok"));
          } catch (error) {
            result.replaceChildren(notice(`Recover failed: ${error.message}`));
          }
        },
      },
      el("label", { for: "recover-since" }, "Recover failed deliveries since "),
      since,
      el("button", { type: "submit" }, "Recover"),
    ),
    result,
    attemptsTable("Recent attempts", recent, false),
    el("p", {}, el("a", { href: `#/deliveries?partner=${encodeURIComponent(id)}` }, "All of this partner's deliveries")),
  );
}

export function attemptsTable(caption, attempts, withPartner, names = {}) {
  return table(
    caption,
    ["When", "Event", ...(withPartner ? ["Partner"] : []), "Attempt", "Outcome", "Status", "Latency", "Error"],
    attempts.map((a) =>
      el(
        "tr",
        {},
        el("td", {}, when(a.timestamp)),
        el("td", {}, el("a", { href: `#/events/${encodeURIComponent(a.eventId)}` }, a.eventId), el("br"), el("small", {}, a.eventType)),
        withPartner ? el("td", {}, names[a.partnerId] || a.partnerId) : null,
        el("td", {}, a.attempt),
        el("td", {}, el("span", { class: `badge ${a.outcome === "delivered" ? "ok" : "bad"}` }, a.outcome)),
        el("td", {}, a.statusCode ?? "—"),
        el("td", {}, ms(a.latencyMs)),
        el("td", {}, a.errorMessage || ""),
      ),
    ),
  );
}

async function deliveries(search = "") {
  const params = new URLSearchParams((search || "").replace(/^\?/, ""));
  const { partners: list } = await api("/admin/partners");
  const names = Object.fromEntries(list.map((p) => [p.partnerId, p.name]));
  const field = (label, input) => el("label", {}, label, input);
  const partner = el("select", { name: "partner" }, list.map((p) => el("option", { value: p.partnerId, selected: params.get("partner") === p.partnerId }, p.name)));
  const status = el(
    "select",
    { name: "status" },
    [["", "any"], ["delivered", "delivered"], ["failed", "failed"]].map(([v, l]) => el("option", { value: v, selected: params.get("status") === v }, l)),
  );
  const since = el("input", { name: "since", type: "datetime-local", value: params.get("since") || "" });
  const until = el("input", { name: "until", type: "datetime-local", value: params.get("until") || "" });
  const eventId = el("input", { name: "eventId", value: params.get("eventId") || "" });
  const form = el(
    "form",
    {
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        for (const [k, v] of new FormData(form)) if (v) next.set(k, String(v));
        location.hash = `#/deliveries?${next}`;
      },
    },
    field("Partner ", partner),
    field("Status ", status),
    field("Since ", since),
    field("Until ", until),
    field("Event id ", eventId),
    el("button", { type: "submit" }, "Show"),
  );
  const chosen = params.get("partner") || list[0]?.partnerId;
  if (!chosen) return show(el("h1", {}, "Deliveries"), notice("No partners yet.", "ok"));
  const iso = (v) => (v ? new Date(v).toISOString() : undefined);
  const page = await api(
    `/admin/partners/${encodeURIComponent(chosen)}/deliveries${query({
      status: params.get("status"),
      since: iso(params.get("since")),
      until: iso(params.get("until")),
      eventId: params.get("eventId"),
      cursor: params.get("cursor"),
    })}`,
  );
  const next = new URLSearchParams(params);
  next.set("partner", chosen);
  if (page.nextCursor) next.set("cursor", page.nextCursor);
  show(
    el("h1", {}, "Deliveries"),
    form,
    attemptsTable(`Attempts to ${names[chosen] || chosen}, newest first`, page.deliveries, false),
    page.nextCursor ? el("p", {}, el("a", { href: `#/deliveries?${next}` }, "Next page")) : null,
  );
}

async function eventPage(id) {
  const [{ deliveries: attempts }, { partners: list }] = await Promise.all([
    api(`/admin/events/${encodeURIComponent(id)}/deliveries`),
    api("/admin/partners"),
  ]);
  const names = Object.fromEntries(list.map((p) => [p.partnerId, p.name]));
  const result = el("div", { "aria-live": "polite" });
  const partnerIds = [...new Set(attempts.map((a) => a.partnerId))];
  show(
    el("h1", {}, "Event ", el("code", {}, id)),
    attempts.length ? null : notice("No attempts logged for this event.", "ok"),
    partnerIds.map((pid) =>
      el(
        "section",
        { class: "partner-attempts" },
        el("h2", {}, names[pid] || pid),
        button(`Replay to ${names[pid] || pid}`, async () => {
          try {
            await api(`/admin/partners/${encodeURIComponent(pid)}/replay`, { method: "POST", body: { eventId: id } });
            result.replaceChildren(notice(`Replay to ${names[pid] || pid} queued.`, "ok"));
          } catch (error) {
            result.replaceChildren(notice(`Replay failed: ${error.message}`));
          }
        }),
        attempts
          .filter((a) => a.partnerId === pid)
          .map((a) =>
            el(
              "article",
              { class: "attempt" },
              el(
                "h3",
                {},
                `Attempt ${a.attempt}: `,
                el("span", { class: `badge ${a.outcome === "delivered" ? "ok" : "bad"}` }, a.outcome),
                ` ${a.statusCode ?? "no response"} in ${ms(a.latencyMs)}, ${when(a.timestamp)}`,
              ),
              a.errorMessage ? el("p", {}, "Error: ", a.errorMessage) : null,
              el("p", {}, "Response from the endpoint:"),
              el("pre", { class: "response" }, a.responseBody || "(empty)"),
            ),
          ),
      ),
    ),
    result,
    el("p", {}, button("Refresh", () => eventPage(id))),
  );
}

async function eventTypes() {
  const { eventTypes: list } = await api("/admin/event-types");
  show(
    el("h1", {}, "Event types"),
    list.length
      ? list.map((t) =>
          el(
            "details",
            {},
            el("summary", {}, t.name, t.description ? ` — ${t.description}` : ""),
            el("pre", {}, JSON.stringify(t.schema, null, 2)),
          ),
        )
      : notice("No event types registered: every type is accepted as it comes.", "ok"),
  );
}
