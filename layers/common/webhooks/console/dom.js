// DOM helpers. Text always goes in as text nodes, never as HTML: names, event types and
// response bodies from partners render as what they are.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

export function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  main.focus({ preventScroll: true });
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function ms(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value)} ms`;
}

export function table(caption, headers, rows) {
  // each cell carries its column's name: on a narrow screen a row is shown as a card,
  // one "name: value" line per cell, instead of a table wider than the screen
  for (const row of rows) {
    [...row.children].forEach((cell, index) => cell.setAttribute("data-label", headers[index] ?? ""));
  }
  return el(
    "table",
    { class: "cards" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headers.length }, "Nothing here yet."))),
  );
}

export function notice(text, kind = "error") {
  return el("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

export function button(label, onclick, attrs = {}) {
  return el("button", { type: "button", onclick, ...attrs }, label);
}

export function badge(kind, text) {
  return el("span", { class: `badge ${kind}` }, text);
}

// A value to paste into a command (a partner id, a new key) with a button that copies it.
export function copyable(value, label) {
  const code = el("code", { class: "copyable" }, value);
  const said = el("span", { class: "copied", role: "status" });
  const copy = button(label, async () => {
    try {
      await navigator.clipboard.writeText(value);
      said.textContent = "Copied.";
    } catch {
      // no clipboard (a page served over plain HTTP from another host): select it instead
      getSelection().selectAllChildren(code);
      said.textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
  });
  return el("span", { class: "copy" }, code, " ", copy, " ", said);
}

// An attempt's error in words ("connection refused", "timed out", "HTTP 500"): the raw text
// the deliverer logged is one click behind it.
export function errorWords(attempt) {
  const raw = attempt.errorMessage || "";
  const status = attempt.statusCode;
  if (status && (status < 200 || status > 299)) return `HTTP ${status}`;
  if (!raw) return "";
  const rules = [
    [/timed? ?out|Timeout/i, "timed out"],
    [/Connection refused|Errno 111|ECONNREFUSED/i, "connection refused"],
    [/destination refused/i, "address not allowed"],
    [/resolve|Name or service not known|getaddrinfo|nodename nor servname|NameResolution/i, "host not found"],
    [/SSL|certificate|TLS/i, "TLS error"],
    [/reset by peer|Connection reset|ECONNRESET/i, "connection reset"],
    [/Connection aborted|RemoteDisconnected|closed connection/i, "connection closed without an answer"],
    [/request not sent/i, "request not sent (a header value it cannot send)"],
    [/internal error/i, "internal error in the deliverer"],
    [/malformed delivery message/i, "malformed delivery message"],
  ];
  for (const [pattern, words] of rules) if (pattern.test(raw) || pattern.test(attempt.errorClass || "")) return words;
  return attempt.errorClass || raw;
}

export function errorCell(attempt) {
  const words = errorWords(attempt);
  const raw = attempt.errorMessage || "";
  if (!words) return "";
  if (!raw || raw === words) return words;
  return el("details", { class: "raw" }, el("summary", { title: raw }, words), el("code", {}, raw));
}
