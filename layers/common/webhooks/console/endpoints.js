// A partner's endpoints: the list, one endpoint's page, the add and edit forms. The same pages
// serve the partner's portal (its API key or portal token: /api/v1/endpoints) and the operator
// on a partner's page (admin key: /api/v1/admin/partners/{id}/endpoints). Which endpoints a
// caller reaches is decided by the API (another partner's endpoint is a 404), never here.

import { ApiError, api } from "./api.js";
import { badge, button, copyable, el, notice, show, table, when } from "./dom.js";
import { attemptsTable } from "./operator.js";

// Where one caller's endpoints are: in the API, in the console's hash, and its delivery log.
export function partnerScope() {
  return { api: "/endpoints", href: "#/endpoints", log: "/deliveries", selfService: true };
}

export function operatorScope(partnerId) {
  const pid = encodeURIComponent(partnerId);
  return {
    api: `/admin/partners/${pid}/endpoints`,
    href: `#/partners/${pid}/endpoints`,
    log: `/admin/partners/${pid}/deliveries`,
    partner: `#/partners/${pid}`,
    selfService: false,
  };
}

const RECENT = 20;
const pageOf = (scope, id) => `${scope.href}/${encodeURIComponent(id)}`;

export function endpointHealth(h) {
  if (h.status === "disabled") return badge("bad", "disabled");
  if (h.pausedUntil && Date.parse(h.pausedUntil) > Date.now()) return badge("warn", "paused");
  if (h.consecutiveFailures > 0) return badge("warn", `failing (${h.consecutiveFailures} in a row)`);
  return badge("ok", "enabled, healthy");
}

const schedule = (s) => (s && s.length ? s.map((n) => `${n} s`).join(", ") : "the service's default");

export function endpointsTable(scope, endpoints, caption = "Endpoints") {
  return table(
    caption,
    ["URL", "Events", "Filter", "Health"],
    endpoints.map((e) =>
      el(
        "tr",
        {},
        el(
          "td",
          {},
          el("a", { href: pageOf(scope, e.endpointId) }, e.url),
          e.description ? [el("br"), el("small", {}, e.description)] : null,
          e.first ? [" ", badge("ok first", "first")] : null,
        ),
        el("td", {}, e.events.join(", ") || "—"),
        el("td", {}, e.filter ? el("code", {}, JSON.stringify(e.filter)) : "none"),
        el("td", {}, endpointHealth(e.health)),
      ),
    ),
  );
}

// The partner's portal: its endpoints.
export async function list(scope) {
  const { endpoints } = await api(scope.api);
  show(
    el("h1", {}, "Endpoints"),
    el("p", {}, "Where your webhooks go: each endpoint has its own URL, events, filter, retry schedule and signing secret."),
    el("p", { class: "toolbar" }, el("a", { href: `${scope.href}/new`, class: "button" }, "Add endpoint")),
    endpointsTable(scope, endpoints, "Your endpoints"),
  );
}

async function load(scope, id) {
  try {
    return await api(`${scope.api}/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function notFound(scope) {
  show(
    el("h1", {}, "Endpoint not found"),
    notice("There is no such endpoint here."),
    el("p", {}, el("a", { href: scope.partner || scope.href }, "Back to the endpoints")),
  );
}

export async function page(scope, id) {
  const e = await load(scope, id);
  if (!e) return notFound(scope);
  const path = `${scope.api}/${encodeURIComponent(id)}`;
  // the log picks this endpoint's attempts (the first endpoint's include those logged before
  // endpoints existed), however many the partner's other endpoints have had since
  const log = `${scope.log}?endpointId=${encodeURIComponent(e.endpointId)}&limit=${RECENT}`;
  const { deliveries: recent } = await api(log);
  const result = el("div", { class: "result-area", "aria-live": "polite" });
  const act = (label, run, attrs = {}) =>
    button(
      label,
      async () => {
        try {
          const shown = await run();
          if (shown) result.replaceChildren(shown);
        } catch (error) {
          result.replaceChildren(notice(`${label} failed: ${error.message}`));
        }
      },
      attrs,
    );
  const h = e.health;
  show(
    el("h1", {}, "Endpoint ", el("code", {}, e.url)),
    scope.partner ? el("p", {}, el("a", { href: scope.partner }, "Back to the partner")) : el("p", {}, el("a", { href: scope.href }, "All endpoints")),
    el("p", { class: "badges" }, endpointHealth(h)),
    e.problems?.length ? el("div", { class: "notice problems" }, el("ul", {}, e.problems.map((p) => el("li", {}, p)))) : null,
    el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Endpoint id"), el("dd", {}, copyable(e.endpointId, "Copy endpoint id")),
      el("dt", {}, "URL"), el("dd", { class: "endpoint-url" }, e.url),
      el("dt", {}, "Description"), el("dd", {}, e.description || "—"),
      el("dt", {}, "Events"), el("dd", { class: "endpoint-events" }, e.events.join(", ") || "none"),
      el("dt", {}, "Filter"), el("dd", {}, e.filter ? el("pre", { class: "endpoint-filter" }, JSON.stringify(e.filter, null, 2)) : "none: every event of these types"),
      el("dt", {}, "Retry schedule"), el("dd", { class: "endpoint-schedule" }, schedule(e.retrySchedule), e.retrySchedule?.length ? ` (${e.retrySchedule.length + 1} attempts)` : ""),
      el("dt", {}, "Rate limit"), el("dd", {}, e.rateLimitPerSecond ? `${e.rateLimitPerSecond}/s` : "none"),
      el("dt", {}, "Timeout"), el("dd", {}, e.timeoutMs ? `${e.timeoutMs} ms` : "default"),
      el("dt", {}, "Custom headers"), el("dd", {}, Object.keys(e.headers || {}).join(", ") || "none"),
      el("dt", {}, "Health"),
      el(
        "dd",
        { class: "endpoint-status" },
        h.status === "disabled" ? `disabled since ${when(h.disabledAt)}${h.disabledReason ? `: ${h.disabledReason}` : ""}` : "enabled",
        h.consecutiveFailures ? `; ${h.consecutiveFailures} failures in a row since ${when(h.failingSince)}` : "",
        h.pausedUntil ? `; paused until ${when(h.pausedUntil)}` : "",
        h.parkedDeliveries ? `; ${h.parkedDeliveries} deliveries parked until it is enabled` : "",
      ),
      el("dt", {}, "Created"), el("dd", {}, when(e.createdAt)),
    ),
    el(
      "div",
      { class: "actions" },
      el("a", { href: `${pageOf(scope, id)}/edit`, class: "button" }, "Edit"),
      act("Send test event", async () => {
        const sent = await api(`${path}/test`, { method: "POST" });
        const ids = sent.enqueued || (sent.eventId ? [sent.eventId] : []);
        return notice(ids.length ? `Test event ${ids.join(", ")} sent.` : "Test event sent.", "ok");
      }),
      act("Rotate secret", async () => {
        const rotated = await api(`${path}/rotate-secret`, { method: "POST" });
        // shown once, here only: not stored by the page, not in the URL, never shown again
        return el(
          "div",
          { class: "notice ok secret-once", role: "status" },
          el("p", {}, "New signing secret (shown once: copy it now): ", copyable(rotated.secretKey, "Copy secret")),
          el("p", {}, rotated.previousSecretValidHours ? `The previous secret also signs for ${rotated.previousSecretValidHours} h, while you switch.` : "The previous secret no longer signs."),
        );
      }),
      h.status === "disabled"
        ? act("Enable endpoint", async () => {
            await api(`${path}/enable`, { method: "POST" });
            return notice("Endpoint enabled; parked deliveries are on their way.", "ok");
          })
        : null,
      e.first
        ? null
        : act("Delete endpoint", async () => {
            if (!confirm(`Delete the endpoint ${e.url}? Nothing more is sent to it.`)) return notice("Not deleted.", "ok");
            await api(path, { method: "DELETE" });
            location.hash = scope.partner || scope.href;
            return null;
          }),
    ),
    e.first ? el("p", { class: "hint" }, "This is the partner's first endpoint (its own webhook URL): it can be changed, not deleted.") : null,
    scope.selfService ? [replayForm(path, result), recoverForm(path, result)] : null,
    result,
    attemptsTable("Recent attempts to this endpoint", recent, false),
  );
}

function replayForm(path, result) {
  const eventId = el("input", { id: "replay-event", name: "eventId", required: true, autocomplete: "off" });
  return el(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const done = await api(`${path}/replay`, { method: "POST", body: { eventId: eventId.value.trim() } });
          result.replaceChildren(notice(`Replay of ${(done.enqueued || [eventId.value.trim()]).join(", ")} queued.`, "ok"));
        } catch (error) {
          result.replaceChildren(notice(`Replay failed: ${error.message}`));
        }
      },
    },
    el("label", { for: "replay-event" }, "Replay the event (id) "),
    eventId,
    el("button", { type: "submit" }, "Replay"),
  );
}

function recoverForm(path, result) {
  const since = el("input", { id: "recover-since", name: "since", type: "datetime-local", required: true });
  return el(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const done = await api(`${path}/recover`, { method: "POST", body: { since: new Date(since.value).toISOString() } });
          result.replaceChildren(notice(`Recovery: ${done.enqueued.length} resent${done.remaining ? `, ${done.remaining} left for the next call` : ""}.`, "ok"));
        } catch (error) {
          result.replaceChildren(notice(`Recover failed: ${error.message}`));
        }
      },
    },
    el("label", { for: "recover-since" }, "Recover failed deliveries since "),
    since,
    el("button", { type: "submit" }, "Recover"),
  );
}

// The add and edit forms. Events and the retry schedule are comma lists, the filter and the
// custom headers JSON objects; the API checks them and its 400 is shown beside the form.
class Problem extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

function jsonObject(name, label, text) {
  if (!text.trim()) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Problem(name, `${label}: not JSON (${error.message})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Problem(name, `${label}: a JSON object, {...}`);
  return value;
}

function seconds(text) {
  const parts = text.split(",").map((s) => s.trim()).filter(Boolean);
  if (!parts.length) return null;
  return parts.map((part) => {
    if (!/^\d+$/.test(part)) throw new Problem("retrySchedule", `Retry schedule: "${part}" is not a whole number of seconds`);
    return Number(part);
  });
}

const whole = (text) => (text.trim() ? Number(text) : null);
const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export async function form(scope, id) {
  const current = id ? await load(scope, id) : null;
  if (id && !current) return notFound(scope);
  const field = (name, label, input, hint) => {
    input.id = `ep-${name}`;
    input.name = name;
    const hintId = hint ? `ep-${name}-hint` : null;
    if (hintId) input.setAttribute("aria-describedby", hintId);
    return [el("label", { for: input.id }, label), el("div", {}, input, hint ? el("small", { id: hintId, class: "hint" }, hint) : null)];
  };
  const c = current || {};
  const inputs = {
    url: el("input", { type: "url", required: true, value: c.url || "", autocomplete: "off", spellcheck: "false" }),
    description: el("input", { value: c.description || "", maxlength: 500 }),
    events: el("input", { required: true, value: (c.events || []).join(", "), spellcheck: "false" }),
    filter: el("textarea", { rows: 4, spellcheck: "false" }, c.filter ? JSON.stringify(c.filter, null, 2) : ""),
    retrySchedule: el("input", { value: (c.retrySchedule || []).join(", "), inputmode: "numeric", spellcheck: "false" }),
    rateLimitPerSecond: el("input", { type: "number", min: 1, step: 1, value: c.rateLimitPerSecond ?? "", inputmode: "numeric" }),
    timeoutMs: el("input", { type: "number", min: 1, step: 1, value: c.timeoutMs ?? "", inputmode: "numeric" }),
    headers: el("textarea", { rows: 2, spellcheck: "false" }),
  };
  // its notices are alerts (role=alert): read out as they appear
  const errors = el("div", { class: "form-errors", id: "ep-errors" });
  const headerNames = Object.keys(c.headers || {});
  const masked = (c.url || "").includes("***");
  const submit = el("button", { type: "submit" }, id ? "Save changes" : "Add endpoint");

  const read = () => {
    const value = {
      url: inputs.url.value.trim(),
      description: inputs.description.value.trim() || null,
      events: inputs.events.value.split(",").map((s) => s.trim()).filter(Boolean),
      filter: jsonObject("filter", "Filter", inputs.filter.value),
      retrySchedule: seconds(inputs.retrySchedule.value),
      rateLimitPerSecond: whole(inputs.rateLimitPerSecond.value),
      timeoutMs: whole(inputs.timeoutMs.value),
      headers: jsonObject("headers", "Custom headers", inputs.headers.value),
    };
    if (!id) return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
    if (masked && value.url !== c.url && value.url.includes("***")) {
      // the API shows a URL's credentials and query as ***: saved so, they would be lost
      throw new Problem("url", "URL: its credentials or query are shown as ***; to change the URL, type all of it, with them");
    }
    // an edit sends what changed; a cleared setting is null (the default applies again).
    // Header values are never shown: left empty, the headers stay as they are.
    const changed = Object.fromEntries(Object.entries(value).filter(([k, v]) => k !== "headers" && !same(v, c[k])));
    if (value.headers) changed.headers = value.headers;
    return changed;
  };

  // the field a problem is about is marked invalid: the one named by the client's check, or
  // the one the API's message names (its path starts with the field's name)
  const mark = (message, named) => {
    for (const [name, input] of Object.entries(inputs)) {
      const hit = named ? name === named : new RegExp(`(^|[\\s:;,])${name}([\\s.:\\[]|$)`).test(message);
      if (hit) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  };

  const body = el(
    "form",
    {
      class: "endpoint-form",
      "aria-describedby": "ep-errors",
      onsubmit: async (event) => {
        event.preventDefault();
        errors.replaceChildren();
        let sent;
        try {
          sent = read();
        } catch (error) {
          if (!(error instanceof Problem)) throw error;
          mark(error.message, error.field);
          return errors.replaceChildren(notice(error.message));
        }
        if (id && !Object.keys(sent).length) return errors.replaceChildren(notice("Nothing changed.", "ok"));
        submit.disabled = true;
        try {
          const saved = id
            ? await api(`${scope.api}/${encodeURIComponent(id)}`, { method: "PATCH", body: sent })
            : await api(scope.api, { method: "POST", body: sent });
          if (id) {
            location.hash = pageOf(scope, id);
            return;
          }
          created(scope, saved);
        } catch (error) {
          const message = error instanceof ApiError ? error.message : String(error);
          mark(message);
          errors.replaceChildren(notice(`${id ? "Not saved" : "Not added"}: ${message}`));
        } finally {
          submit.disabled = false;
        }
      },
    },
    field("url", "URL", inputs.url, masked ? "credentials and query shown as ***: to change the URL, type all of it" : "https://... where the webhooks are POSTed"),
    field("description", "Description", inputs.description),
    field("events", "Events", inputs.events, "comma-separated event types or patterns: order.created, invoice.*"),
    field("filter", "Filter (JSON)", inputs.filter, 'optional, matched against the event: {"data": {"total": {"$gte": 100}}}'),
    field("retrySchedule", "Retry schedule (seconds)", inputs.retrySchedule, "optional, waits between attempts: 5, 300, 1800; empty: the service's default"),
    field("rateLimitPerSecond", "Rate limit (per second)", inputs.rateLimitPerSecond, "optional; empty: unlimited"),
    field("timeoutMs", "Timeout (ms)", inputs.timeoutMs, "optional; empty: the service's default"),
    field(
      "headers",
      "Custom headers (JSON)",
      inputs.headers,
      id
        ? `${headerNames.length ? `now ${headerNames.join(", ")}; values are never shown, empty keeps them` : "none now"}; a JSON object replaces them`
        : 'optional: {"Authorization": "Bearer ..."}',
    ),
    errors,
    el("div", { class: "form-actions" }, submit, " ", el("a", { href: id ? pageOf(scope, id) : scope.partner || scope.href }, "Cancel")),
  );
  show(el("h1", {}, id ? "Edit endpoint" : "Add endpoint"), id ? el("p", {}, el("code", {}, c.url)) : null, body);
  inputs.url.focus();
}

// A created endpoint: its signing secret, shown here once and nowhere else.
function created(scope, endpoint) {
  show(
    el("h1", {}, "Endpoint added"),
    el(
      "div",
      { class: "notice ok secret-once", role: "status" },
      el("p", {}, "Its signing secret (shown once: copy it now, it is not shown again): "),
      el("p", {}, copyable(endpoint.secretKey, "Copy secret")),
    ),
    el("p", {}, el("code", {}, endpoint.url), " receives ", endpoint.events.join(", "), "."),
    el("p", {}, el("a", { href: pageOf(scope, endpoint.endpointId) }, "Open the endpoint"), " · ", el("a", { href: scope.partner || scope.href }, "All endpoints")),
  );
}
