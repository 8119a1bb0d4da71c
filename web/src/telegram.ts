// The Telegram side of a call on its page (issue 21): what the calls API's `telegram` object
// says (CallEngine::status() in src/telegram/calls/engine.cpp). Every string in it came from
// the network (the peer's candidates, its emojis, its version), so it only ever reaches the page
// as text nodes and attribute values, never as markup. A module of its own so that the browser
// test can render a fixture with it directly.

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

// The parts of an SDP candidate line an operator looks at (RFC 8839 §5.1: "candidate:"
// foundation component transport priority address port "typ" type, then extensions).
export interface CandidateParts {
  address: string;
  port: string;
  transport: string;
  type: string;
  related?: string; // raddr:rport, the host address behind a srflx or relay candidate
}

export function parseCandidate(line: string): CandidateParts | null {
  const f = line.trim().replace(/^a=/, "").replace(/^candidate:/, "").split(/\s+/);
  if (f.length < 8 || f[6] !== "typ") return null;
  const parts: CandidateParts = {
    transport: f[2].toLowerCase(),
    address: f[4],
    port: f[5],
    type: f[7],
  };
  const raddr = f.indexOf("raddr");
  const rport = f.indexOf("rport");
  if (raddr > 7 && rport > 7 && f[raddr + 1] && f[rport + 1])
    parts.related = hostPort(f[raddr + 1], f[rport + 1]);
  return parts;
}

function hostPort(address: string, port: string) {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function candidateCell(line: unknown) {
  if (typeof line !== "string" || line === "") return el("span", {}, "—");
  const c = parseCandidate(line);
  const from = c?.related ? ` (from ${c.related})` : "";
  const text = c ? `${hostPort(c.address, c.port)} ${c.transport} ${c.type}${from}` : line;
  return el("span", { title: line, class: "candidate" }, text);
}

// The path as an operator says it (issue 22): peer to peer (a host or srflx pair), a TURN
// relay, or one of Telegram's reflectors (with its server id); any other word as it came.
const paths: Record<string, string> = {
  host: "peer to peer (host)",
  srflx: "peer to peer (srflx)",
  prflx: "peer to peer (prflx)",
  relay: "TURN relay",
  reflector: "Telegram reflector",
};

function pathText(t: Json) {
  const path = typeof t.path === "string" ? t.path : "";
  const name = paths[path] ?? path;
  const id = t.reflector_id;
  return id !== undefined && id !== null && id !== "" ? `${name} ${String(id)}` : name;
}

function ms(v: unknown) {
  return typeof v === "number" && isFinite(v) ? `${Math.round(v)} ms` : "—";
}

function count(v: unknown) {
  return typeof v === "number" && isFinite(v) ? String(v) : "—";
}

// "2, 5.3 s in all (at 10.2 s for 5.1 s; at 40.0 s for 0.2 s)": each loss of the path since the
// start and how long it lasted (the list keeps the last ones; the count is all of them).
function reconnections(t: Json) {
  const n = typeof t.reconnection_count === "number" ? t.reconnection_count : 0;
  const list: Json[] = Array.isArray(t.reconnections) ? t.reconnections : [];
  if (!n && !list.length) return "none";
  const secs = (v: unknown) => (typeof v === "number" ? `${(v / 1000).toFixed(1)} s` : "?");
  const each = list.map((r) =>
    r && typeof r.duration_ms === "number"
      ? `at ${secs(r.at_ms)} for ${secs(r.duration_ms)}`
      : `at ${secs(r?.at_ms)}, still reconnecting`,
  );
  const total = typeof t.reconnecting_ms === "number" ? `, ${secs(t.reconnecting_ms)} in all` : "";
  return `${n}${total}` + (each.length ? ` (${each.join("; ")})` : "");
}

// custom_parameters as key=value pairs, text only.
function parameters(v: unknown) {
  if (!v || typeof v !== "object") return typeof v === "string" && v ? v : "none";
  const pairs = Object.entries(v as Record<string, unknown>).map(
    ([k, x]) => `${k}=${typeof x === "string" ? x : JSON.stringify(x)}`,
  );
  return pairs.length ? pairs.join(", ") : "none";
}

function skipped(v: unknown) {
  return count(Array.isArray(v) ? v.length : v);
}

function percent(v: unknown) {
  return typeof v === "number" && isFinite(v) ? `${(v * 100).toFixed(1)} %` : "—";
}

// The section, or null when the call has no Telegram leg. `ended`: the call has left the board
// and these are the last values seen.
export function telegramSection(t: Json, ended = false): HTMLElement | null {
  if (!t || typeof t !== "object") return null;
  const emojis: string[] = Array.isArray(t.emojis)
    ? t.emojis.slice(0, 4).map((e: unknown) => String(e))
    : [];
  const row = (name: string, key: string, value: Node | string) =>
    el("tr", { "data-field": key }, el("th", {}, name), el("td", {}, value));
  // Whole milliseconds (ICE's checks): 0 is a path faster than that, not a missing value.
  const rtt =
    typeof t.rtt_ms !== "number" ? "—" : t.rtt_ms < 1 ? "< 1 ms" : `${Math.round(t.rtt_ms)} ms`;
  // Rows of fields only some engines or calls have: none while the field is absent.
  const optional = (name: string, key: string, v: unknown, show: (v: unknown) => string) =>
    v === undefined || v === null ? [] : [row(name, key, show(v))];
  const state = String(t.state ?? "") + (ended ? " (the call has ended: last values)" : "");
  return el(
    "div",
    { id: "telegram" },
    el("h3", {}, "Telegram"),
    el(
      "div",
      { class: "emojis", id: "telegram-emojis" },
      ...(emojis.length
        ? emojis.map((e) => el("span", { class: "emoji" }, e))
        : [ended ? "(not kept after the call)" : "(no key yet)"]),
    ),
    el(
      "p",
      { class: "hint" },
      "The call's encryption key: the same four emojis must show in the Telegram app of the " +
        "person on the call. If they differ, someone is in the middle.",
    ),
    el(
      "table",
      { class: "fields" },
      el(
        "tbody",
        {},
        row("Version", "version", String(t.version ?? "")),
        row("State", "state", state),
        row("Path", "path", pathText(t)),
        row("Time to connect", "connect_ms", ms(t.connect_ms)),
        row("Reconnections", "reconnections", reconnections(t)),
        row("Local candidate", "local_candidate", candidateCell(t.local_candidate)),
        row("Remote candidate", "remote_candidate", candidateCell(t.remote_candidate)),
        row("Round-trip time", "rtt", rtt),
        row("Loss received by esg", "loss", percent(t.loss)),
        row("Loss received by the peer", "remote_loss", percent(t.remote_loss)),
        row("Packets (received, sent)", "packets", `${count(t.frames_in)}, ${count(t.packets_out)}`),
        ...optional("Jitter", "jitter", t.jitter_ms, ms),
        ...optional("Jitter buffer", "jitter_buffer", t.jitter_buffer_ms, ms),
        ...optional("Late packets", "late", t.late, count),
        ...optional("Concealed frames", "concealed", t.concealed, count),
        ...optional("Frames sent as silence", "silenced", t.silenced, count),
        row("SRTP", "srtp", String(t.srtp ?? "")),
        row("User muted", "remote_muted", t.remote_muted === true ? "yes" : "no"),
        row("Custom parameters", "custom_parameters", parameters(t.custom_parameters)),
        ...optional("TCP reflectors skipped", "skipped_tcp_reflectors", t.skipped_tcp_reflectors, skipped),
        ...optional("Answered by esg (autoanswer)", "gateway_answered_at", t.gateway_answered_at, String),
        ...optional("Answered by the PBX", "pbx_answered_at", t.pbx_answered_at, String),
        ...optional("Ended by", "ended_by", t.ended_by, (v) => String(v)),
      ),
    ),
  );
}
