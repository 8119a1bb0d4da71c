// The admin web page in a real browser (issue 10): Debian's chromium, driven by playwright-core
// with the flags of CONTRACTS.md (no outside connections, a fresh profile). test_web.py starts
// esg and its peers and places the call; this walks the page like an operator and prints one
// JSON line of what it found. Screenshots go to the artefacts folder.
//
//   node ui.mjs '{"url": ..., "user": ..., "password": ..., "account": ..., "registered": ...,
//                "artefacts": ...}'
import { chromium } from "playwright-core";
import { join } from "node:path";

const o = JSON.parse(process.argv[2]);
const found = {};
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
  // Playwright gives every launch a fresh profile (its own --user-data-dir in a new temporary
  // folder), removed when the browser closes.
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
try {
  // An anonymous visitor: the sign-in form, and nothing from the APIs.
  await page.goto(o.url + "/ui/");
  await page.waitForSelector("#signin:not([hidden])");
  found.anonymous_form = await page.isVisible("#signin");
  found.anonymous_api = await page.evaluate(async () =>
    (await fetch("/api/monitor/v1/calls")).status);
  found.anonymous_nav = await page.isVisible("#nav");

  // Sign in.
  await page.fill("#user", o.user);
  await page.fill("#password", "wrong");
  await page.click("#signin button");
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent !== "");
  found.wrong_password = await page.textContent("#signin-error");
  await page.fill("#password", o.password);
  await page.click("#signin button");
  await page.waitForSelector("#nav:not([hidden])");

  // Providers: the account registered to Kamailio.
  await page.waitForSelector(`#providers tr:has-text("${o.registered}") [data-regstate="registered"]`,
                             { timeout: 15000 });
  found.provider_registered = true;
  await page.click(`#providers tr:has-text("${o.registered}")`);
  found.last_response = await page.textContent("#last-response");
  await page.screenshot({ path: join(o.artefacts, "providers.png"), fullPage: true });

  // Calls in progress: the call still up, one row, cell by cell.
  await page.click('a[href="#calls"]');
  await page.waitForSelector("#calls tbody tr");
  found.call_row = await page.$$eval("#calls tbody tr:first-child td", (tds) =>
    tds.map((td) => td.textContent.trim()));

  // History: the call, and its diagram.
  await page.click('a[href="#history"]');
  await page.waitForSelector("#history tbody tr button[data-call]");
  await page.click("#history tbody tr:first-child button[data-call]");
  await page.waitForSelector("svg#diagram");
  found.arrows = await page.$$eval("svg#diagram g.arrow", (gs) =>
    gs.map((g) => `${g.getAttribute("data-leg")}:${g.getAttribute("data-label")}`));
  found.decisions = await page.$$eval("svg#diagram [data-decision]", (ts) => ts.map((t) => t.textContent));
  found.lanes = await page.$$eval("svg#diagram [data-lane]", (ts) => ts.map((t) => t.textContent));
  await page.click('svg#diagram g.arrow[data-label="INVITE"]');
  found.raw_packet = await page.textContent("#raw-packet");
  await page.screenshot({ path: join(o.artefacts, "diagram.png"), fullPage: true });

  // The substitution test.
  await page.click('a[href="#substitution"]');
  await page.fill('#substitution-form [name=account]', o.account);
  await page.selectOption('#substitution-form [name=direction]', "in");
  await page.fill('#substitution-form [name=from_user]', "89161234567");
  await page.fill('#substitution-form [name=to_user]', "74951234567");
  await page.click("#substitution-form button");
  await page.waitForSelector("#substitution-json");
  found.substitution = JSON.parse(await page.textContent("#substitution-json"));

  // Configuration: a PBX connection created, refused with the field named, and deleted.
  // Dialogs: a confirm is accepted, the login's prompt gets the code, an alert is noted.
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.accept(d.type() === "prompt" ? o.code ?? "24680" : undefined);
  });
  await page.click('a[href="#config"]');
  await page.selectOption("#collection", "/rest/v1/uc/pbx");
  await page.waitForSelector("#collection-items table");
  await page.click("#create");
  await page.fill("#editor", JSON.stringify({ code: "pbx-bad", mode: "sideways" }));
  await page.click("#save");
  await page.waitForSelector("#config-message.error");
  found.config_error = await page.textContent("#config-message");
  await page.fill("#editor", JSON.stringify({ code: "pbx-web", mode: "ip", address: "127.0.0.9", port: 5060 }));
  await page.click("#save");
  await page.waitForSelector('#collection-items tr:has-text("pbx-web")');
  found.config_saved = await page.textContent("#config-message");
  await page.click('#collection-items tr:has-text("pbx-web") button:has-text("Delete")');
  await page.waitForSelector('#collection-items tr:has-text("pbx-web")', { state: "detached" });
  found.config_deleted = true;

  // A Telegram line's login through the page: the code asked for, then "ready".
  await page.selectOption("#collection", "/rest/v1/telegram/lines");
  await page.waitForSelector('#collection-items tr:has-text("tg-web")');
  // Beside the lines, the firewall list for the PBX's administrator, opened with the session.
  found.fw_link = await page.getAttribute("#fw-link:visible", "href");
  found.fw_text = await page.evaluate(async (href) => {
    const r = await fetch(href);
    return { status: r.status, type: r.headers.get("content-type"), text: await r.text() };
  }, found.fw_link);
  dialogs.length = 0;
  await page.click('#collection-items tr:has-text("tg-web") button:has-text("Log in")');
  for (let i = 0; i < 100 && !dialogs.some((m) => m.startsWith("line ")); ++i)
    await page.waitForTimeout(100);
  found.telegram_login = dialogs.filter((m) => !m.startsWith("Delete"));

  // Sign out: the form again, and the APIs closed.
  await page.click("#signout");
  await page.waitForSelector("#signin:not([hidden])");
  found.after_signout_api = await page.evaluate(async () =>
    (await fetch("/api/monitor/v1/calls")).status);
} catch (e) {
  found.error = String(e);
  found.page_text = (await page.textContent("main").catch(() => "")).slice(0, 2000);
  await page.screenshot({ path: join(o.artefacts, "failure.png"), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(found));
