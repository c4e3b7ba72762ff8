// The API the console talks to: the same origin and path prefix it was served from, with
// the key the user signed in with, sent as the API's own headers.

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

export function forget() {
  sessionStorage.removeItem(KEY);
}

export async function api(path, { method = "GET", body } = {}) {
  const current = session();
  const headers = { Accept: "application/json" };
  if (current) headers[current.role === "operator" ? "X-Admin-Key" : "X-API-Key"] = current.key;
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
