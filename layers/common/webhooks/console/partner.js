// A partner's view (its API key): its endpoint's health and its own deliveries, read-only.
// Whose deliveries these are is decided by the API from the key, not by this page.

import { api, query } from "./api.js";
import { el, notice, show, when } from "./dom.js";
import { attemptsTable } from "./operator.js";

export const nav = [["#/", "My deliveries"]];

export const routes = [
  [/^#\/?(\?.*)?$/, mine],
  [/^#\/events\/([^/?]+)$/, myEvent],
];

async function mine(search = "") {
  const params = new URLSearchParams((search || "").replace(/^\?/, ""));
  const [me, page] = await Promise.all([
    api("/deliveries/endpoint"),
    api(`/deliveries${query({ status: params.get("status"), cursor: params.get("cursor") })}`),
  ]);
  const e = me.endpoint;
  show(
    el("h1", {}, `Deliveries to ${me.name}`),
    el(
      "dl",
      { class: "settings" },
      el("dt", {}, "Endpoint"),
      el("dd", {}, e.status === "disabled" ? `disabled ${when(e.disabledAt)}: ${e.disabledReason || ""}` : "enabled"),
      el("dt", {}, "Failures in a row"),
      el("dd", {}, e.consecutiveFailures, e.failingSince ? ` since ${when(e.failingSince)}` : ""),
      el("dt", {}, "Paused until"),
      el("dd", {}, when(e.pausedUntil)),
    ),
    el(
      "p",
      { class: "toolbar" },
      el("a", { href: "#/" }, "All"),
      " · ",
      el("a", { href: "#/?status=failed" }, "Failed only"),
    ),
    attemptsTable("My delivery attempts, newest first", page.deliveries, false),
    page.nextCursor
      ? el("p", {}, el("a", { href: `#/?${new URLSearchParams({ ...Object.fromEntries(params), cursor: page.nextCursor })}` }, "Next page"))
      : null,
  );
}

async function myEvent(id) {
  try {
    const { deliveries } = await api(`/deliveries/events/${encodeURIComponent(id)}`);
    show(
      el("h1", {}, "Event ", el("code", {}, id)),
      deliveries.map((a) =>
        el(
          "article",
          { class: "attempt" },
          el("h2", {}, `Attempt ${a.attempt}: ${a.outcome}, ${a.statusCode ?? "no response"}, ${when(a.timestamp)}`),
          a.errorMessage ? el("p", {}, "Error: ", a.errorMessage) : null,
          el("p", {}, "Your endpoint answered:"),
          el("pre", { class: "response" }, a.responseBody || "(empty)"),
        ),
      ),
    );
  } catch (error) {
    if (error.status !== 404) throw error;
    show(el("h1", {}, "Event not found"), notice("There is no delivery of this event to your endpoint."));
  }
}
