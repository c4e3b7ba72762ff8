// A partner's portal (its API key or a portal token): its endpoints, managed here, and its own
// deliveries. Whose they are is decided by the API from the key or token, not by this page.

import { api, query } from "./api.js";
import { badge, el, notice, show, when } from "./dom.js";
import * as endpoints from "./endpoints.js";
import { attemptArticles, attemptsTable, eventDetails } from "./operator.js";

export const nav = [
  ["#/", "My deliveries", /^#\/?(\?.*)?$|^#\/events\//],
  ["#/endpoints", "Endpoints", /^#\/endpoints/],
];

const own = endpoints.partnerScope();

export const routes = [
  [/^#\/?(\?.*)?$/, mine],
  [/^#\/events\/([^/?]+)$/, myEvent],
  [/^#\/endpoints$/, () => endpoints.list(own)],
  [/^#\/endpoints\/new$/, () => endpoints.form(own)],
  [/^#\/endpoints\/([^/?]+)$/, (id) => endpoints.page(own, id)],
  [/^#\/endpoints\/([^/?]+)\/edit$/, (id) => endpoints.form(own, id)],
];

function endpointBadge(e) {
  if (e.status === "disabled") return badge("bad", "disabled");
  if (e.pausedUntil && Date.parse(e.pausedUntil) > Date.now()) return badge("warn", "paused");
  if (e.consecutiveFailures > 0) return badge("warn", `failing (${e.consecutiveFailures} in a row)`);
  return badge("ok", "enabled, healthy");
}

async function mine(search = "") {
  const params = new URLSearchParams((search || "").replace(/^\?/, ""));
  const [me, page] = await Promise.all([
    api("/deliveries/endpoint"),
    api(`/deliveries${query({ status: params.get("status"), cursor: params.get("cursor") })}`),
  ]);
  const e = me.endpoint;
  const failedOnly = params.get("status") === "failed";
  show(
    el("h1", {}, `Deliveries to ${me.name}`),
    el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Endpoint"),
      el("dd", { class: "endpoint-status" }, endpointBadge(e), e.status === "disabled" ? ` since ${when(e.disabledAt)}: ${e.disabledReason || ""}` : ""),
      el("dt", {}, "Failures in a row"),
      el("dd", {}, e.consecutiveFailures, e.failingSince ? ` since ${when(e.failingSince)}` : ""),
      el("dt", {}, "Paused until"),
      el("dd", {}, when(e.pausedUntil)),
    ),
    el(
      "p",
      { class: "toolbar" },
      el("a", { href: "#/", "aria-current": failedOnly ? null : "true" }, "All"),
      " · ",
      el("a", { href: "#/?status=failed", "aria-current": failedOnly ? "true" : null }, "Failed only"),
    ),
    attemptsTable("My delivery attempts, newest first", page.deliveries, false),
    page.nextCursor
      ? el("p", {}, el("a", { href: `#/?${new URLSearchParams({ ...Object.fromEntries(params), cursor: page.nextCursor })}` }, "Next page"))
      : null,
  );
}

async function myEvent(id) {
  try {
    const found = await api(`/deliveries/events/${encodeURIComponent(id)}`);
    show(
      el("h1", {}, "Event ", el("code", {}, id)),
      eventDetails(found.event),
      el("h2", {}, "Attempts to your endpoint"),
      attemptArticles(found.deliveries, "Your endpoint answered:"),
    );
  } catch (error) {
    if (error.status !== 404) throw error;
    show(el("h1", {}, "Event not found"), notice("There is no delivery of this event to your endpoint."));
  }
}
