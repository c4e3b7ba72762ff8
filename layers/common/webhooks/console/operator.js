// The operator's views (admin key): overview, partners, deliveries, events, event types.

import { api, query } from "./api.js";
import { chart } from "./chart.js";
import { badge, button, copyable, el, errorCell, errorWords, ms, notice, show, table, when } from "./dom.js";
import * as endpoints from "./endpoints.js";

// [href, label, which pages it is the current section of]
export const nav = [
  ["#/", "Overview", /^#\/?$|^#\/overview\//],
  ["#/partners", "Partners", /^#\/partners/],
  ["#/deliveries", "Deliveries", /^#\/deliveries|^#\/events\//],
  ["#/event-types", "Event types", /^#\/event-types/],
];

export const routes = [
  [/^#\/?$/, overview],
  [/^#\/overview\/(hour|day)$/, overview],
  [/^#\/partners$/, partners],
  [/^#\/partners\/([^/?]+)$/, partnerPage],
  [/^#\/partners\/([^/?]+)\/endpoints\/new$/, (pid) => endpoints.form(endpoints.operatorScope(pid))],
  [/^#\/partners\/([^/?]+)\/endpoints\/([^/?]+)$/, (pid, id) => endpoints.page(endpoints.operatorScope(pid), id)],
  [/^#\/partners\/([^/?]+)\/endpoints\/([^/?]+)\/edit$/, (pid, id) => endpoints.form(endpoints.operatorScope(pid), id)],
  [/^#\/deliveries(\?.*)?$/, deliveries],
  [/^#\/events\/([^/?]+)$/, eventPage],
  [/^#\/event-types$/, eventTypes],
];

const partnerLink = (id, name) => el("a", { href: `#/partners/${encodeURIComponent(id)}` }, name);

async function overview(window = "hour") {
  const stats = await api(`/admin/stats${query({ window })}`);
  const attention = stats.partners.filter((p) => p.endpoint.consecutiveFailures > 0 || p.endpoint.status === "disabled");
  show(
    el("h1", {}, "Overview"),
    el(
      "p",
      { class: "toolbar" },
      el("a", { href: "#/overview/hour", "aria-current": window === "hour" ? "true" : null }, "Last hour"),
      " · ",
      el("a", { href: "#/overview/day", "aria-current": window === "day" ? "true" : null }, "Last day"),
    ),
    skippedNotice(stats.skipped),
    chart(stats, new Date()),
    el("h2", {}, "Needs attention"),
    attention.length
      ? el(
          "ul",
          { class: "attention" },
          attention.map((p) =>
            el(
              "li",
              {},
              partnerLink(p.partnerId, p.name),
              " ",
              health(p.endpoint, p.deadLettered),
              p.endpoint.failingSince ? ` since ${when(p.endpoint.failingSince)}` : "",
              p.deadLettered ? `; ${p.deadLettered} dead-lettered in the last ${window}` : "",
              p.endpoint.status === "disabled" ? `; ${p.parked} deliveries parked until it is enabled` : "",
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
          el("td", {}, partnerLink(p.partnerId, p.name)),
          el("td", {}, p.delivered),
          el("td", {}, p.failed),
          el("td", {}, p.deadLettered),
          el("td", {}, ms(p.latencyP50Ms)),
          el("td", {}, ms(p.latencyP95Ms)),
          el("td", {}, health(p.endpoint, p.deadLettered)),
        ),
      ),
    ),
  );
}

// Red when the endpoint is failing and deliveries are being dead-lettered (nothing gets
// through: the attempts run out); amber while it fails but nothing was lost yet (retrying).
export function health(endpoint, deadLettered = 0) {
  const streak = endpoint.consecutiveFailures;
  if (endpoint.status === "disabled") return badge("bad", "disabled");
  if (streak > 0 && deadLettered > 0) return badge("bad", `failing: ${streak} in a row, dead-lettering`);
  if (streak > 0) return badge("warn", `failing (${streak}), retrying`);
  return badge("ok", "healthy");
}

function legacyKey(p) {
  return p.apiKeyLegacy ? badge("warn legacy", "legacy key: rotate") : null;
}

function skippedNotice(skipped) {
  if (!skipped || !skipped.length) return null;
  return el(
    "div",
    { class: "notice" },
    el(
      "p",
      {},
      `${skipped.length === 1 ? "1 stored partner document has" : `${skipped.length} stored partner documents have`} fields of the wrong type and ${skipped.length === 1 ? "is" : "are"} left out here; `,
      el("code", {}, "webhooks migrate"),
      " reports and repairs them:",
    ),
    el("ul", {}, skipped.map((s) => el("li", {}, partnerLink(s.partnerId, s.partnerId), `: ${(s.problems || []).join("; ")}`))),
  );
}

async function partners() {
  const [{ partners: list, skipped }, stats] = await Promise.all([api("/admin/partners"), api("/admin/stats?window=day")]);
  const day = Object.fromEntries(stats.partners.map((p) => [p.partnerId, p]));
  show(
    el("h1", {}, "Partners"),
    skippedNotice(skipped),
    table(
      "Partners",
      ["Name", "Active", "Endpoints", "Dead-lettered (24 h)", "Failing since", "Rate limit", "Subscriptions"],
      list.map((p) => {
        // the stats' endpoint is the partner's worst (a disabled second endpoint must not
        // hide behind a healthy first one, as on the overview); the list's is the first one's
        const endpoint = day[p.partnerId]?.endpoint ?? p.endpoint;
        return el(
          "tr",
          {},
          el("td", {}, partnerLink(p.partnerId, p.name), " ", legacyKey(p)),
          el("td", {}, p.isActive ? "yes" : "no"),
          el("td", {}, health(endpoint, day[p.partnerId]?.deadLettered ?? 0)),
          el("td", {}, day[p.partnerId]?.deadLettered ?? 0),
          el("td", {}, when(endpoint.failingSince)),
          el("td", {}, p.rateLimit ? `${p.rateLimit}/s` : "none"),
          el("td", {}, (p.events || []).join(", ") || "—"),
        );
      }),
    ),
  );
}

async function partnerPage(id) {
  const path = `/admin/partners/${encodeURIComponent(id)}`;
  const scope = endpoints.operatorScope(id);
  // the endpoints are a section of the page: if they cannot be read, the rest still shows
  const [p, { deliveries: recent }, destinations] = await Promise.all([
    api(path),
    api(`${path}/deliveries?limit=20`),
    api(scope.api).then(
      (found) => found.endpoints,
      (error) => error,
    ),
  ]);
  const result = el("div", { "aria-live": "polite" });
  const act = (label, run) =>
    button(label, async () => {
      try {
        result.replaceChildren(await run());
      } catch (error) {
        result.replaceChildren(notice(`${label} failed: ${error.message}`));
      }
    });
  const flag = el("span", {}, legacyKey(p));
  const since = el("input", { id: "recover-since", type: "datetime-local", required: true });
  const overlap = el("input", { id: "key-overlap", type: "number", min: 0, max: 720, step: 1, value: 0, inputmode: "numeric" });
  show(
    el("h1", {}, p.name),
    el("p", { class: "badges" }, health(p.endpoint, p.deadLettered), " ", flag),
    p.problems?.length
      ? el(
          "div",
          { class: "notice problems" },
          el("p", {}, "This stored document has fields of the wrong type, read as absent until ", el("code", {}, "webhooks migrate"), " repairs them:"),
          el("ul", {}, p.problems.map((problem) => el("li", {}, problem))),
        )
      : null,
    el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Partner id"),
      el(
        "dd",
        {},
        copyable(p.partnerId, "Copy partner id"),
        el("br"),
        el("small", {}, "Every CLI command takes it, e.g. ", el("code", {}, `webhooks partners show ${p.partnerId}`)),
      ),
      el("dt", {}, "Dead-lettered"),
      el(
        "dd",
        { class: "dead-lettered" },
        `${p.deadLettered ?? 0} `,
        el("small", {}, "not delivered since (Recover resends them) · "),
        el("a", { href: `#/deliveries?${new URLSearchParams({ partner: p.partnerId, status: "failed" })}` }, "see the failures"),
      ),
      el("dt", {}, "Webhook URL"), el("dd", {}, p.webhookUrl),
      el("dt", {}, "Active"), el("dd", {}, p.isActive ? "yes" : "no"),
      el("dt", {}, "Endpoint"), el("dd", {}, p.endpoint.status, p.endpoint.disabledReason ? `: ${p.endpoint.disabledReason}` : ""),
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
        const sent = await api(`${path}/test`, { method: "POST" });
        return notice(`Test event ${(sent.enqueued || []).join(", ")} sent.`, "ok");
      }),
      act("Rotate secret", async () => {
        const rotated = await api(`${path}/rotate-secret`, { method: "POST" });
        // shown once, here only: never stored, never shown again
        return el("div", { class: "notice ok", role: "status" }, "New secret (shown once): ", copyable(rotated.secretKey, "Copy secret"));
      }),
      p.endpoint.status === "disabled"
        ? act("Enable endpoint", async () => {
            await api(`${path}/endpoint/enable`, { method: "POST" });
            return notice("Endpoint enabled; parked deliveries are on their way.", "ok");
          })
        : null,
      p.isActive
        ? act("Portal link", async () => {
            const issued = await api(`${path}/portal-tokens`, { method: "POST", body: {} });
            // the token is in the link's fragment: a browser never sends it to a server
            return el(
              "div",
              { class: "notice ok portal-link", role: "status" },
              el("p", {}, `A link that signs in as ${p.name} until ${when(issued.expiresAt)} (shown once; anyone with it is signed in as this partner):`),
              el("p", {}, copyable(issued.url, "Copy portal link")),
              el("p", {}, el("a", { href: issued.url, target: "_blank", rel: "noopener noreferrer" }, "Open the portal in a new tab")),
            );
          })
        : null,
      p.isActive
        ? act("Deactivate", async () => {
            if (!confirm(`Deactivate ${p.name}? It will receive nothing until activated again.`)) return notice("Not deactivated.", "ok");
            await api(path, { method: "PATCH", body: { isActive: false } });
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
          const hours = Number(overlap.value || 0);
          const when = hours ? `keeps working for ${hours} h` : "stops working at once";
          if (!confirm(`Rotate ${p.name}'s API key? The old key ${when}.`)) return result.replaceChildren(notice("API key not rotated.", "ok"));
          try {
            const rotated = await api(`${path}/rotate-api-key`, { method: "POST", body: { overlapHours: hours } });
            flag.replaceChildren(); // a rotated key is no longer a legacy one
            result.replaceChildren(
              el(
                "div",
                { class: "notice ok", role: "status" },
                "New API key (shown once: give it to the partner now): ",
                copyable(rotated.apiKey, "Copy API key"),
              ),
            );
          } catch (error) {
            result.replaceChildren(notice(`Rotate API key failed: ${error.message}`));
          }
        },
      },
      el("label", { for: "key-overlap" }, "Old API key keeps working for (hours) "),
      overlap,
      el("button", { type: "submit" }, "Rotate API key"),
    ),
    el(
      "form",
      {
        class: "inline",
        onsubmit: async (event) => {
          event.preventDefault();
          try {
            const done = await api(`${path}/recover`, {
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
    el("h2", {}, "Endpoints"),
    destinations instanceof Error
      ? notice(`Its endpoints could not be read: ${destinations.message}`)
      : endpoints.endpointsTable(scope, destinations, `${p.name}'s endpoints`),
    el("p", {}, el("a", { href: `${scope.href}/new` }, "Add an endpoint")),
    attemptsTable("Recent attempts", recent, false),
    el("p", {}, el("a", { href: `#/deliveries?partner=${encodeURIComponent(id)}` }, "All of this partner's deliveries")),
  );
}

const OUTCOME_WORDS = { delivered: "delivered", retry: "failed, will retry", dead_lettered: "dead-lettered" };

export function outcome(a) {
  const kind = a.outcome === "delivered" ? "ok" : a.outcome === "retry" ? "warn" : "bad";
  return badge(kind, OUTCOME_WORDS[a.outcome] || a.outcome);
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
        withPartner ? el("td", {}, names[a.partnerId] ? partnerLink(a.partnerId, names[a.partnerId]) : a.partnerId) : null,
        el("td", {}, a.attempt),
        el("td", {}, outcome(a)),
        el("td", {}, a.statusCode ?? "—"),
        el("td", {}, ms(a.latencyMs)),
        el("td", {}, errorCell(a)),
      ),
    ),
  );
}

async function deliveries(search = "") {
  const params = new URLSearchParams((search || "").replace(/^\?/, ""));
  const { partners: list } = await api("/admin/partners");
  const names = Object.fromEntries(list.map((p) => [p.partnerId, p.name]));
  const chosen = params.get("partner") || "";
  const field = (label, input) => el("label", {}, label, input);
  const partner = el(
    "select",
    { name: "partner" },
    el("option", { value: "", selected: !chosen }, "All partners"),
    list.map((p) => el("option", { value: p.partnerId, selected: chosen === p.partnerId }, p.name)),
  );
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
  const iso = (v) => (v ? new Date(v).toISOString() : undefined);
  const filters = query({
    status: params.get("status"),
    since: iso(params.get("since")),
    until: iso(params.get("until")),
    eventId: params.get("eventId"),
    cursor: params.get("cursor"),
  });
  const page = await api(chosen ? `/admin/partners/${encodeURIComponent(chosen)}/deliveries${filters}` : `/admin/deliveries${filters}`);
  const next = new URLSearchParams(params);
  if (page.nextCursor) next.set("cursor", page.nextCursor);
  show(
    el("h1", {}, "Deliveries"),
    form,
    attemptsTable(chosen ? `Attempts to ${names[chosen] || chosen}, newest first` : "Attempts to all partners, newest first", page.deliveries, !chosen, names),
    page.nextCursor ? el("p", {}, el("a", { href: `#/deliveries?${next}` }, "Next page")) : null,
  );
}

// The event itself: its type, when it was accepted and its payload.
export function eventDetails(event) {
  if (!event) return notice("The event itself is no longer stored (events are kept as long as the delivery log); its attempts are below.", "ok");
  return [
    el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Type"), el("dd", { class: "event-type" }, event.eventType),
      el("dt", {}, "Accepted"), el("dd", {}, el("time", { datetime: event.timestamp }, when(event.timestamp)), ` (${event.timestamp})`),
    ),
    el("h2", {}, "Payload (data)"),
    el("pre", { class: "payload" }, JSON.stringify(event.data, null, 2)),
  ];
}

// One partner's attempts in the order they were made. Attempt numbers restart when the
// delivery is sent again (replay, redrive, recovery, an endpoint enabled): each restart
// is marked as the start of a new series.
const inOrder = (attempts) =>
  [...attempts].sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : a.id < b.id ? -1 : 1));

export function attemptArticles(attempts, answeredBy = "Response from the endpoint:") {
  const ordered = inOrder(attempts);
  return ordered.map((a, index) => [
    index > 0 && a.attempt <= ordered[index - 1].attempt
      ? el("p", { class: "series" }, `New series of attempts from ${when(a.timestamp)}: sent again by a replay, redrive, recovery or an endpoint enabled again`)
      : null,
    el(
      "article",
      { class: "attempt" },
      el("h3", {}, `Attempt ${a.attempt}: `, outcome(a), ` ${a.statusCode ?? "no response"} in ${ms(a.latencyMs)}, ${when(a.timestamp)}`),
      a.errorMessage ? el("p", {}, "Error: ", errorCell(a)) : null,
      el("p", {}, answeredBy),
      el("pre", { class: "response" }, a.responseBody || "(empty)"),
    ),
  ]);
}

function resultOf(a) {
  const how = a.statusCode ? `HTTP ${a.statusCode}` : errorWords(a);
  if (a.outcome === "delivered") return `Replay delivered: ${how} in ${ms(a.latencyMs)}.`;
  if (a.outcome === "retry") return `Replay attempt failed: ${how}; it will be retried.`;
  return `Replay failed: ${how}; dead-lettered.`;
}

const POLL_MS = 1000;
const POLL_TIMES = 60;

async function eventPage(id) {
  const load = () => api(`/admin/events/${encodeURIComponent(id)}/deliveries`);
  const [found, { partners: list }] = await Promise.all([load(), api("/admin/partners")]);
  const names = Object.fromEntries(list.map((p) => [p.partnerId, p.name]));
  const partnerIds = [...new Set(found.deliveries.map((a) => a.partnerId))];
  const sections = partnerIds.map((pid) => {
    const name = names[pid] || pid;
    const of = (attempts) => attempts.filter((a) => a.partnerId === pid);
    const list = el("div", { class: "attempts" }, attemptArticles(of(found.deliveries)));
    const said = el("span", { class: "result", role: "status" });
    const section = el("section", { class: "partner-attempts" }, el("h2", {}, partnerLink(pid, name)));
    const replay = button(`Replay to ${name}`, async () => {
      replay.disabled = true;
      try {
        const before = of((await load()).deliveries).length;
        said.textContent = "Sending…";
        await api(`/admin/partners/${encodeURIComponent(pid)}/replay`, { method: "POST", body: { eventId: id } });
        said.textContent = "Queued; waiting for the attempt…";
        // the new attempt shows up here as soon as the deliverer logs it (bounded wait)
        for (let n = 0; n < POLL_TIMES && section.isConnected; n += 1) {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          const now = of((await load()).deliveries);
          if (now.length > before) {
            list.replaceChildren(...attemptArticles(now).flat().filter(Boolean));
            said.textContent = resultOf(inOrder(now).at(-1));
            return;
          }
        }
        said.textContent = `Queued, not attempted within ${(POLL_MS * POLL_TIMES) / 1000} s: use Refresh later.`;
      } catch (error) {
        said.textContent = `Replay failed: ${error.message}`;
      } finally {
        replay.disabled = false;
      }
    });
    section.append(el("div", { class: "actions" }, replay, said), list);
    return section;
  });
  show(
    el("h1", {}, "Event ", el("code", {}, id)),
    eventDetails(found.event),
    found.deliveries.length ? null : notice("No attempts logged for this event.", "ok"),
    sections,
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
