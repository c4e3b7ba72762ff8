// The API the console talks to: the same origin and path prefix it was served from, with
// the key the user signed in with, sent as the API's own headers, or a partner's portal token
// (Authorization: Bearer) when a portal link signed the tab in.

const KEY = "webhooks-console";
const base = location.pathname.replace(/console(\/.*)?$/, ""); // "/" or a stage's "/v1/"

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function remember(role, key, name) {
  sessionStorage.setItem(KEY, JSON.stringify({ role, key, name }));
}

export function rememberPortal(token, name) {
  sessionStorage.setItem(KEY, JSON.stringify({ role: "partner", token, name }));
}

// A portal link (<api>/console#portal=<token>, issued by the operator) signs this tab in as
// its partner. The fragment never reaches a server; the token is kept for this tab only and
// taken out of the address bar at once, so no history entry, bookmark or screenshot holds it.
export function takePortalToken() {
  const found = location.hash.match(/^#portal=([A-Za-z0-9_-]{1,200})$/);
  if (!found) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  rememberPortal(found[1]);
  return found[1];
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

export async function api(path, { method = "GET", body } = {}) {
  const current = session();
  const headers = { Accept: "application/json" };
  if (current?.token) headers.Authorization = `Bearer ${current.token}`;
  else if (current) headers[current.role === "operator" ? "X-Admin-Key" : "X-API-Key"] = current.key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${base}api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error || `HTTP ${response.status}`);
  return data;
}

export function query(params) {
  const found = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return found.length ? `?${new URLSearchParams(found)}` : "";
}
