// The admin page (issue 10): sign-in with the admin user, then the providers' registration
// state. The session cookie (HttpOnly) authorizes every API call the page makes.
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const r = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  const j = await r.json().catch(() => ({}));
  return { status: r.status, body: j };
}

async function showProviders() {
  const r = await api("GET", "/api/monitor/v1/esg/active?regs=true");
  if (r.status === 401) return showSignIn();
  const rows = [];
  for (const site of r.body.data?.sites ?? []) {
    for (const server of site.servers ?? []) rows.push(...(server.regs ?? []));
  }
  const tbody = $("providers").querySelector("tbody");
  tbody.replaceChildren(...rows.map((a) => {
    const tr = document.createElement("tr");
    for (const v of [a.code, a.regstate, a.pingstate, String(a.onlinetrunkcount ?? 0)]) {
      const td = document.createElement("td");
      td.textContent = v ?? "";
      tr.append(td);
    }
    return tr;
  }));
  $("providers").hidden = false;
}

function showSignIn() {
  $("signin").hidden = false;
  $("providers").hidden = true;
  $("signout").hidden = true;
  $("who").textContent = "";
}

async function start() {
  const s = await api("GET", "/ui/api/session");
  if (s.status !== 200) return showSignIn();
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("who").textContent = s.body.user;
  await showProviders();
}

$("signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("POST", "/ui/api/login", { user: $("user").value, password: $("password").value });
  $("signin-error").textContent = r.status === 200 ? "" : r.body.error ?? "sign-in failed";
  if (r.status === 200) start();
});
$("signout").addEventListener("click", async () => {
  await api("POST", "/ui/api/logout");
  showSignIn();
});
start();
