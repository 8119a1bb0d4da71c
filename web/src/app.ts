// esg's admin web page (issue 10). One page, one route per hash (#providers, #calls, #history,
// #diagram, #substitution, #config); every call goes to the same REST and monitoring APIs as
// any client, authorized by the HttpOnly session cookie that signing in sets.

import { telegramSection } from "./telegram.js";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const $ = (id: string) => document.getElementById(id) as HTMLElement;
const page = () => $("page");

function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function svg(tag: string, attrs: Record<string, string | number> = {}, text?: string) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(method: string, path: string, body?: Json): Promise<{ status: number; body: Json }> {
  const r = await fetch(path, {
    method,
    headers: body !== undefined ? { "Content-Type": "application/json" } : {},
    body: body !== undefined ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  const j = r.status === 204 ? {} : await r.json().catch(() => ({}));
  if (r.status === 401 && !path.startsWith("/ui/api/")) showSignIn();
  return { status: r.status, body: j };
}

function table(headers: string[], rows: (Node | string)[][], onClick?: (i: number) => void) {
  const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
  const body = rows.map((cells, i) => {
    const tr = el("tr", onClick ? { class: "clickable" } : {}, ...cells.map((c) => el("td", {}, c)));
    if (onClick) tr.addEventListener("click", () => onClick(i));
    return tr;
  });
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function ms(t: number) {
  return t ? new Date(t).toISOString().replace("T", " ").slice(0, 19) : "";
}

let refresh: number | undefined;
function every(seconds: number, f: () => void) {
  if (refresh) window.clearInterval(refresh);
  refresh = window.setInterval(f, seconds * 1000);
}

// --- sign-in ---------------------------------------------------------------------------

function showSignIn() {
  $("signin").hidden = false;
  $("nav").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
  page().replaceChildren();
  if (refresh) window.clearInterval(refresh);
}

async function start() {
  const s = await api("GET", "/ui/api/session");
  if (s.status !== 200) return showSignIn();
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = s.body.user;
  route();
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const user = ($("user") as HTMLInputElement).value;
  const password = ($("password") as HTMLInputElement).value;
  const r = await api("POST", "/ui/api/login", { user, password });
  $("signin-error").textContent = r.status === 200 ? "" : r.body.error ?? "sign-in failed";
  if (r.status === 200) start();
});
$("signout").addEventListener("click", async () => {
  await api("POST", "/ui/api/logout");
  showSignIn();
});

// --- pages -----------------------------------------------------------------------------

// The call whose page (its diagram) is open (set by the calls and history pages); `live` when
// it came from the calls in progress, whose board entry the page then keeps refreshing.
let diagramOf: Json = null;
let diagramLive = false;

function route() {
  if (refresh) window.clearInterval(refresh);
  const name = location.hash.slice(1) || "providers";
  for (const a of Array.from(document.querySelectorAll("#nav a")))
    a.classList.toggle("active", a.getAttribute("href") === "#" + name);
  const pages: Record<string, () => void> = {
    providers: providersPage,
    calls: callsPage,
    history: historyPage,
    diagram: diagramPage,
    substitution: substitutionPage,
    config: configPage,
  };
  (pages[name] ?? providersPage)();
}
window.addEventListener("hashchange", () => {
  if (!$("nav").hidden) route();
});

async function providersPage() {
  const detail = el("pre", { id: "last-response", hidden: "" });
  const holder = el("div", { id: "providers" });
  page().replaceChildren(el("h2", {}, "Providers"), holder, detail);
  const load = async () => {
    const [active, providers] = await Promise.all([
      api("GET", "/api/monitor/v1/esg/active?regs=true"),
      api("GET", "/rest/v1/uc/providers"),
    ]);
    const trunks: Record<string, number> = {};
    for (const p of providers.body.items ?? []) trunks[p.code] = p.trunks ?? 0;
    const regs: Json[] = [];
    for (const site of active.body.data?.sites ?? [])
      for (const server of site.servers ?? []) regs.push(...(server.regs ?? []));
    holder.replaceChildren(
      table(
        ["Account", "Registration", "Ping", "Calls / trunks", "Reason"],
        regs.map((a) => [
          a.code,
          el("span", { "data-regstate": a.regstate }, a.regstate),
          a.pingstate,
          `${a.onlinetrunkcount ?? 0} / ${trunks[a.code] || "∞"}`,
          a.warning ? el("span", { class: "flag" }, a.warning) : a.reason ?? "",
        ]),
        (i) => {
          detail.hidden = false;
          detail.textContent = (regs[i].last_response ?? []).join("\n") || "(no response yet)";
        },
      ),
    );
  };
  await load();
  every(3, load);
}

// What the calls in progress and the history show alike: when, which way, the two legs, and
// the numbers before and after normalization.
const callHeaders = ["Started", "Direction", "From", "To", "Caller", "Called"];
function callCells(c: Json): string[] {
  return [
    ms(c.started),
    c.direction,
    c.a?.code ?? "",
    c.b?.code ?? "",
    `${c.caller?.received ?? ""} → ${c.caller?.sent ?? ""}`,
    `${c.called?.received ?? ""} → ${c.called?.sent ?? ""}`,
  ];
}

function mediaFlags(c: Json) {
  const flags: string[] = [];
  const media = c.media ?? {};
  if (media.one_way) flags.push("one-way audio");
  if (media.hold) flags.push("on hold");
  return flags;
}

async function callsPage() {
  const holder = el("div", { id: "calls" });
  page().replaceChildren(el("h2", {}, "Calls in progress"), holder);
  const load = async () => {
    const r = await api("GET", "/api/monitor/v1/calls");
    const calls: Json[] = r.body.data?.calls ?? [];
    holder.replaceChildren(
      calls.length === 0
        ? el("p", {}, "No call in progress.")
        : table(
            [...callHeaders, "State", "Duration", "Media", ""],
            calls.map((c) => [
              ...callCells(c),
              c.state,
              c.answered ? `${Math.round((Date.now() - c.answered) / 1000)} s` : "",
              mediaFlags(c).map((f) => el("span", { class: "flag" }, f)).reduce(
                (p: HTMLElement, f) => (p.append(f, " "), p),
                el("span"),
              ),
              diagramButton(c, true),
            ]),
          ),
    );
  };
  await load();
  every(2, load);
}

function diagramButton(c: Json, live = false) {
  const b = el("button", { "data-call": c.id }, "Diagram");
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    diagramOf = c;
    diagramLive = live;
    location.hash = "#diagram";
  });
  return b;
}

async function historyPage() {
  const form = el(
    "form",
    { class: "inline", id: "history-form" },
    el("label", {}, "From (UTC)", el("input", { name: "from", placeholder: "2026-12-01T00:00:00Z" })),
    el("label", {}, "To", el("input", { name: "to" })),
    el("label", {}, "Number", el("input", { name: "number" })),
    el("label", {}, "Limit", el("input", { name: "limit", value: "50" })),
    el("button", { type: "submit" }, "Search"),
  );
  const holder = el("div", { id: "history" });
  page().replaceChildren(el("h2", {}, "Call history"), form, holder);
  const search = async () => {
    const q = new URLSearchParams();
    for (const k of ["from", "to", "number", "limit"]) {
      const v = (form.querySelector(`[name=${k}]`) as HTMLInputElement).value.trim();
      if (v) q.set(k, v);
    }
    const r = await api("GET", "/rest/v1/cdrs?" + q.toString());
    if (r.status !== 200) {
      holder.replaceChildren(el("p", { class: "error" }, `${r.body.field ?? ""} ${r.body.error ?? ""}`));
      return;
    }
    const items: Json[] = r.body.items ?? [];
    holder.replaceChildren(
      table(
        [...callHeaders, "Status", "Duration", "Ended by", ""],
        items.map((c) => [
          ...callCells(c),
          String(c.status ?? ""),
          c.duration ? `${c.duration} s` : "",
          `${c.hangup_by ?? ""} ${c.reason ?? ""}`,
          diagramButton(c),
        ]),
      ),
    );
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  await search();
}

// --- the sequence diagram --------------------------------------------------------------

function label(packet: string) {
  const first = packet.split("\r\n", 1)[0];
  if (first.startsWith("SIP/2.0 ")) {
    const cseq = /^CSeq:\s*\d+\s+(\S+)/im.exec(packet);
    return first.slice(8) + (cseq ? ` (${cseq[1]})` : "");
  }
  return first.split(" ", 1)[0];
}

// A call in progress: its Telegram side (when it has one) refreshed every 2 s like the calls
// page; once the call leaves the board the last values stay, marked as such.
function liveTelegram(c: Json) {
  const holder = el("div", { id: "telegram-holder" });
  const show = (t: Json, ended: boolean) => {
    const s = telegramSection(t, ended);
    holder.replaceChildren(...(s ? [s] : []));
  };
  // From History: the CDR's Telegram fields, the call long over.
  show(c.telegram, !diagramLive);
  if (!diagramLive) return holder;
  let last: Json = c.telegram;
  every(2, async () => {
    const r = await api("GET", `/api/monitor/v1/calls/${encodeURIComponent(c.id)}`);
    if (r.status === 404) {
      if (refresh) window.clearInterval(refresh);
      show(last, true);
    } else if (r.status === 200 && r.body.data) {
      last = r.body.data.telegram ?? last;
      show(last, false);
    }
  });
  return holder;
}

async function diagramPage() {
  const c = diagramOf;
  if (!c) {
    page().replaceChildren(el("h2", {}, "Diagram"), el("p", {}, "Open a call from Calls or History."));
    return;
  }
  const tg = liveTelegram(c);
  const a = c.a?.call_id ?? c.id;
  const b = c.b?.call_id ?? "";
  const q = new URLSearchParams();
  if (b) q.set("b", b);
  if (c.started) q.set("started", String(c.started));
  const r = await api("GET", `/api/monitor/v1/calls/${encodeURIComponent(a)}/packets?${q}`);
  const packets: Json[] = r.body.data?.packets ?? [];
  // From the trn log each packet is one line, its line breaks written as spaces: put them back
  // before each header name (close enough to read; the log has the exact text).
  const fromTrn = packets.some((p) => p.source === "trn");
  for (const p of packets) {
    if (p.source === "trn") p.packet = p.packet.replace(/ (?=[A-Za-z][A-Za-z0-9-]*: )/g, "\r\n");
  }
  const raw = el("pre", { id: "raw-packet" }, "Click an arrow to see its packet.");
  const title = el("h2", {}, `Call ${c.id}`);
  if (packets.length === 0) {
    page().replaceChildren(title, tg, el("p", {}, "No packets of this call are kept any more."));
    return;
  }
  // Lanes: the A side's peers, esg, the B side's peers. A Telegram leg's events (TDLib's call
  // states, the media engine's: issue 22) have a lane of their own on the outer side of that
  // leg, in the same order as the packets.
  const isEvent = (p: Json) => p.proto === "telegram";
  const lanes: string[] = [];
  const lane = (peer: string, leg: string) => {
    const key = `${leg}:${peer}`;
    if (!lanes.includes(key)) lanes.push(key);
  };
  for (const p of packets) if (p.call_id === a && isEvent(p)) lane("telegram", "a");
  for (const p of packets) if (p.call_id === a && !isEvent(p)) lane(p.peer, "a");
  lanes.push("esg");
  for (const p of packets) if (p.call_id !== a && !isEvent(p)) lane(p.peer, "b");
  for (const p of packets) if (p.call_id !== a && isEvent(p)) lane("telegram", "b");
  const laneName = (k: string) => {
    if (k === "esg") return "esg";
    if (k.slice(2) === "telegram") return "Telegram";
    const [leg, peer] = [k.slice(0, 1), k.slice(2)];
    return `${leg === "a" ? c.a?.code ?? "A" : c.b?.code ?? "B"} ${peer}`;
  };
  const decisions: string[] = c.decisions ?? [];
  const gap = 220, top = 50, step = 34;
  const notesHeight = decisions.length ? 16 * decisions.length + 16 : 0;
  // Wide enough for the longest decision (about 6.4 px a character at the page's font size).
  const boxWidth = Math.max(460, 20 + 6.4 * Math.max(0, ...decisions.map((d) => d.length)));
  const firstB = packets.findIndex((p) => p.call_id !== a && !isEvent(p));
  const yOf = (i: number) => top + 30 + i * step + (firstB >= 0 && i >= firstB ? notesHeight + 24 : 0);
  const width = Math.max(gap * lanes.length + 200, 100 + lanes.indexOf("esg") * gap + boxWidth);
  const height = yOf(packets.length) + 40 + (firstB < 0 ? notesHeight : 0);
  const s = svg("svg", { width, height, id: "diagram" });
  const x = (k: string) => 100 + lanes.indexOf(k) * gap;
  lanes.forEach((k) => {
    s.append(svg("text", { x: x(k), y: 20, "text-anchor": "middle", "data-lane": k }, laneName(k)));
    s.append(svg("line", { x1: x(k), y1: 30, x2: x(k), y2: height - 10, stroke: "#999", "stroke-dasharray": "4 4" }));
  });
  const t0 = packets[0].time;
  packets.forEach((p, i) => {
    const leg = p.call_id === a ? "a" : "b";
    if (isEvent(p)) {
      // An event: a mark on the Telegram lane and its words, towards esg.
      const lx = x(`${leg}:telegram`);
      const y = yOf(i);
      const g = svg("g", { class: "tg-event", "data-leg": leg, "data-event": p.packet });
      g.append(svg("circle", { cx: lx, cy: y - 4, r: 5, fill: "#229ed9" }));
      g.append(svg("text", { x: leg === "a" ? lx + 10 : lx - 10, y, "text-anchor": leg === "a" ? "start" : "end", fill: "#17658a" }, p.packet));
      g.append(svg("text", { x: 8, y: y + 4, fill: "#777" }, `+${((p.time - t0) / 1000).toFixed(1)} ms`));
      g.addEventListener("click", () => {
        raw.textContent = `Telegram: ${p.packet}`;
      });
      s.append(g);
      return;
    }
    const peer = x(`${leg}:${p.peer}`);
    const [from, to] = p.direction === "recv" ? [peer, x("esg")] : [x("esg"), peer];
    const y = yOf(i);
    const g = svg("g", { class: "arrow", "data-leg": leg, "data-label": label(p.packet) });
    // The whole row between the two lanes takes the click, not just the thin line.
    g.append(svg("rect", { x: Math.min(from, to), y: y - 20, width: Math.abs(to - from), height: 26, fill: "transparent" }));
    g.append(svg("line", { x1: from, y1: y, x2: to, y2: y, stroke: leg === "a" ? "#1d3557" : "#2a9d8f", "stroke-width": 2, "marker-end": "url(#head)" }));
    g.append(svg("text", { x: (from + to) / 2, y: y - 6, "text-anchor": "middle" }, label(p.packet)));
    g.append(svg("text", { x: 8, y: y + 4, fill: "#777" }, `+${((p.time - t0) / 1000).toFixed(1)} ms`));
    g.addEventListener("click", () => {
      raw.textContent = `${p.direction === "recv" ? "received from" : "sent to"} ${p.proto} ${p.peer}\n\n${p.packet}`;
    });
    s.append(g);
  });
  // esg's decisions between the legs, on its own lane.
  if (decisions.length) {
    const y0 = firstB >= 0 ? yOf(firstB) - notesHeight - 28 : yOf(packets.length);
    const box = svg("g", { id: "decisions" });
    box.append(svg("rect", { x: x("esg") - 10, y: y0, width: boxWidth, height: notesHeight, fill: "#fff8e1", stroke: "#e0c068" }));
    decisions.forEach((d, i) => box.append(svg("text", { x: x("esg") - 2, y: y0 + 16 + i * 16, "data-decision": "" }, d)));
    s.append(box);
  }
  const defs = svg("defs");
  const marker = svg("marker", { id: "head", markerWidth: 10, markerHeight: 8, refX: 9, refY: 4, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,4 L0,8 z", fill: "#333" }));
  defs.append(marker);
  s.prepend(defs);
  const source = fromTrn ? " (from the trn log: line breaks restored approximately)" : "";
  const kind = c.direction === "in" ? "Incoming call" : c.direction === "out" ? "Outgoing call" : "Call";
  page().replaceChildren(title, tg, el("p", { id: "diagram-source" }, `${kind}, ${packets.filter((p) => !isEvent(p)).length} packets${source}`), s, raw);
}

// --- the substitution test -------------------------------------------------------------

async function substitutionPage() {
  const form = el(
    "form",
    { class: "inline", id: "substitution-form" },
    el("label", {}, "Account", el("input", { name: "account", required: "" })),
    el("label", {}, "Direction", el("select", { name: "direction" }, el("option", {}, "in"), el("option", {}, "out"))),
    el("label", {}, "From", el("input", { name: "from_user" })),
    el("label", {}, "To", el("input", { name: "to_user" })),
    el("button", { type: "submit" }, "Test"),
  );
  const out = el("div", { id: "substitution-result" });
  page().replaceChildren(el("h2", {}, "Routing · Testing · Substitution"), form, out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = (k: string) => (form.querySelector(`[name=${k}]`) as HTMLInputElement).value;
    const r = await api("POST", "/rest/v1/routing/test/substitution", {
      account: v("account"),
      direction: v("direction"),
      from_user: v("from_user"),
      to_user: v("to_user"),
    });
    if (r.status !== 200) {
      out.replaceChildren(el("p", { class: "error" }, `${r.body.field ?? ""}: ${r.body.error ?? ""}`));
      return;
    }
    const steps: Json[] = r.body.steps ?? r.body.rules ?? [];
    out.replaceChildren(
      steps.length
        ? table(["Rule", "Field", "Before", "After"], steps.map((x) => [String(x.rule ?? x.id ?? ""), x.field ?? "", x.before ?? "", x.after ?? ""]))
        : el("p", {}, "No rule applied."),
      el("pre", { id: "substitution-json" }, JSON.stringify(r.body, null, 2)),
    );
  });
}

// --- configuration: the collections, through the same REST API -------------------------

const collections: [string, string][] = [
  ["Providers", "/rest/v1/uc/providers"],
  ["PBX connections", "/rest/v1/uc/pbx"],
  ["Telegram lines", "/rest/v1/telegram/lines"],
  ["Normalization rules", "/rest/v1/routing/normalization"],
  ["Routing rules", "/rest/v1/routing/rules"],
  ["Border rules", "/rest/v1/master/borderrules"],
  ["Bans", "/rest/v1/master/bans"],
];

async function configPage() {
  const picker = el("select", { id: "collection" }, ...collections.map(([n, p]) => el("option", { value: p }, n))) as HTMLSelectElement;
  const holder = el("div", { id: "collection-items" });
  const editor = el("textarea", { id: "editor", hidden: "" }) as HTMLTextAreaElement;
  const save = el("button", { id: "save", hidden: "" }, "Save");
  const message = el("p", { id: "config-message" });
  const create = el("button", { id: "create" }, "New");
  // With the Telegram lines (issue 23): what the PBX's firewall must let in, for its administrator.
  const fw = el(
    "p",
    { id: "fw-note", hidden: "" },
    "The PBX's firewall must allow every address esg sends from (signaling and media, every instance): ",
    el("a", { id: "fw-link", href: "/fw.txt", target: "_blank" }, "firewall list (/fw.txt)"),
    ", or as JSON: ",
    el("a", { id: "fw-json", href: "/api/monitor/v1/esg/fw", target: "_blank" }, "/api/monitor/v1/esg/fw"),
    ".",
  );
  page().replaceChildren(el("h2", {}, "Configuration"), el("div", {}, picker, " ", create), fw, holder, editor, save, message);
  let editing: Json = null; // the item being edited, or {} for a new one
  const path = () => picker.value;
  const load = async () => {
    fw.hidden = path() !== "/rest/v1/telegram/lines";
    const r = await api("GET", path());
    const items: Json[] = r.body.items ?? [];
    holder.replaceChildren(
      table(
        ["Id", "Code", "Settings", ""],
        items.map((it) => {
          const edit = el("button", {}, "Edit");
          edit.addEventListener("click", () => open(it));
          const del = el("button", {}, "Delete");
          del.addEventListener("click", async () => {
            if (!confirm(`Delete ${it.code ?? it.id}?`)) return;
            const d = await api("DELETE", `${path()}/${it.id}`);
            message.textContent = d.status === 204 ? "deleted" : d.body.error;
            load();
          });
          const actions = el("span", {}, edit, " ", del);
          if (path() === "/rest/v1/telegram/lines") actions.append(" ", loginButton(it));
          return [String(it.id), it.code ?? "", JSON.stringify(it).slice(0, 140), actions];
        }),
      ),
    );
  };
  const open = (it: Json) => {
    editing = it;
    editor.hidden = false;
    save.hidden = false;
    const shown = { ...it };
    delete shown.id;
    editor.value = JSON.stringify(shown, null, 2);
  };
  create.addEventListener("click", () => open({}));
  picker.addEventListener("change", () => {
    editor.hidden = save.hidden = true;
    load();
  });
  save.addEventListener("click", async () => {
    let body: Json;
    try {
      body = JSON.parse(editor.value);
    } catch (e) {
      message.textContent = "not JSON: " + e;
      return;
    }
    const r = editing?.id ? await api("PATCH", `${path()}/${editing.id}`, body) : await api("POST", path(), body);
    message.className = r.status < 300 ? "ok" : "error";
    message.textContent = r.status < 300 ? "saved" : `${r.body.field ?? ""}: ${r.body.error ?? ""}`;
    if (r.status < 300) {
      editor.hidden = save.hidden = true;
      load();
    }
  });
  await load();
}

// A Telegram line's login, step by step as the line's state asks.
function loginButton(line: Json) {
  const b = el("button", {}, "Log in");
  b.addEventListener("click", async () => {
    let r = await api("POST", `/rest/v1/telegram/lines/${line.id}/login`, {});
    while (r.status === 200 && (r.body.state === "wait_code" || r.body.state === "wait_password")) {
      const code = r.body.state === "wait_code";
      const v = prompt(code ? "The code Telegram sent" : `Two-step password (hint: ${r.body.password_hint ?? ""})`);
      if (v === null) return;
      r = await api("POST", `/rest/v1/telegram/lines/${line.id}/login`, code ? { code: v } : { password: v });
      if (r.status === 400) {
        alert(r.body.error);
        r = { status: 200, body: { state: code ? "wait_code" : "wait_password" } };
      }
    }
    alert(r.status === 200 ? `line ${line.code}: ${r.body.state}` : r.body.error);
  });
  return b;
}

start();
