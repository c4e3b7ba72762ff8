// The console's shell: sign-in, navigation by the URL's hash, one view at a time.

import { ApiError, api, forget, remember, rememberPortal, session, takePortalToken } from "./api.js";
import { el, notice, show } from "./dom.js";
import * as operator from "./operator.js";
import * as partner from "./partner.js";

const PORTAL_ENDED = "This portal link has expired or was revoked; ask the operator for a new one.";

function signIn(message) {
  const role = el(
    "select",
    { id: "role", name: "role" },
    el("option", { value: "operator" }, "Operator (admin key)"),
    el("option", { value: "partner" }, "Partner (API key)"),
  );
  const key = el("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true });
  const form = el(
    "form",
    {
      class: "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        remember(role.value, key.value);
        try {
          const checked = await api(role.value === "operator" ? "/admin/stats" : "/deliveries/endpoint");
          // a partner's name, shown in the header as who is signed in
          if (role.value === "partner") remember(role.value, key.value, checked.name);
        } catch (error) {
          forget();
          const text =
            error instanceof ApiError && (error.status === 401 || error.status === 403)
              ? "That key was not accepted. Check it and the role you chose."
              : error instanceof ApiError && error.status === 429
                ? "Too many wrong keys from here; wait a minute and try again."
                : `Could not sign in: ${error.message}`;
          return signIn(text);
        }
        location.hash = "#/";
        route();
      },
    },
    el("label", { for: "role" }, "Sign in as"),
    role,
    el("label", { for: "key" }, "Key"),
    key,
    el("button", { type: "submit" }, "Sign in"),
  );
  chrome(null);
  show(
    el("h1", {}, "Sign in"),
    message ? notice(message) : null,
    form,
    el(
      "div",
      { class: "help" },
      el("h2", {}, "Where the keys are"),
      el(
        "p",
        {},
        "Operator: the admin key. Locally, ",
        el("code", {}, "webhooks local"),
        " prints it when it starts and keeps it in ",
        el("code", {}, ".local/admin-key"),
        " (in the folder you ran it from). On AWS it is the key whose SHA-256 the deployment keeps in SSM (",
        el("code", {}, "AdminApiKeyHashParameterName"),
        "); whoever deployed it has the key.",
      ),
      el(
        "p",
        {},
        "Partner: its API key, shown once by ",
        el("code", {}, "webhooks partners create"),
        " (or by ",
        el("code", {}, "webhooks partners rotate-api-key"),
        " and the console's Rotate API key). Or open the portal link the operator sends you (",
        el("code", {}, "webhooks partners portal-link"),
        "): it signs you in for a while without a key.",
      ),
    ),
  );
  key.focus();
}

function chrome(current) {
  const views = current ? (current.role === "operator" ? operator : partner) : null;
  const hash = location.hash || "#/";
  document.getElementById("nav").replaceChildren(
    ...(views
      ? views.nav.map(([href, label, here]) => el("a", { href, "aria-current": here.test(hash) ? "page" : null }, label))
      : []),
  );
  const who = document.getElementById("who");
  who.replaceChildren();
  if (current) {
    who.append(
      "Signed in as ",
      el("strong", {}, current.role === "operator" ? "operator" : current.name || "partner"),
      current.role === "partner" ? " (partner)" : "",
    );
  }
  document.getElementById("signout").hidden = !current;
}

async function route() {
  const current = session();
  if (!current) return signIn();
  chrome(current);
  const views = current.role === "operator" ? operator : partner;
  const hash = location.hash || "#/";
  for (const [pattern, view] of views.routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      await view(...match.slice(1).map((part) => (part === undefined ? undefined : decodeURIComponent(part))));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        forget();
        return signIn(current.token ? PORTAL_ENDED : "Your key is no longer accepted; sign in again.");
      }
      show(el("h1", {}, "Something went wrong"), notice(error.message));
    }
    return;
  }
  show(el("h1", {}, "Not found"), notice("No such page."));
}

document.getElementById("signout").addEventListener("click", () => {
  forget();
  location.hash = "#/";
  signIn();
});

// a portal link (on load, or pasted into a signed-in tab): sign in with its token, asking who
// it is for the header, then show the partner's view
async function start() {
  const token = takePortalToken();
  if (token) {
    try {
      rememberPortal(token, (await api("/deliveries/endpoint")).name);
    } catch (error) {
      forget();
      return signIn(error instanceof ApiError && error.status === 401 ? PORTAL_ENDED : `Could not sign in: ${error.message}`);
    }
  }
  return route();
}

window.addEventListener("hashchange", start);
start();
