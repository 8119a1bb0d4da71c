// A call's page with its Telegram side, in Debian's chromium (issue 21): test_web_telegram.py
// has a Telegram call up through esg; this signs in, opens the call from the calls in progress,
// reads the Telegram section and prints it as one JSON line ("shown"). It then waits for the
// test's word on stdin between steps: "muted" (the user muted: the page must say so on its own,
// by refreshing), "ended" (the call is over: the last values stay, marked), "done". Last, it
// renders a fixture with hostile strings through the page's own module, which must show them as
// text. Every step prints one JSON line; the last one has everything.
//
//   node telegram_call.mjs '{"url": ..., "user": ..., "password": ..., "artefacts": ...}'
import { chromium } from "playwright-core";
import { join } from "node:path";
import { createInterface } from "node:readline";

const o = JSON.parse(process.argv[2]);
const found = {};
const words = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const waitWord = async (word) => {
  const { value } = await words.next();
  if (value?.trim() !== word) throw new Error(`expected "${word}" on stdin, got "${value}"`);
};
const say = (step) => console.log(JSON.stringify({ step, ...found }));

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const field = (key) => page.textContent(`#telegram tr[data-field="${key}"] td`);
const title = (key) => page.getAttribute(`#telegram tr[data-field="${key}"] td span`, "title");
try {
  await page.goto(o.url + "/ui/");
  await page.waitForSelector("#signin:not([hidden])");
  await page.fill("#user", o.user);
  await page.fill("#password", o.password);
  await page.click("#signin button");
  await page.waitForSelector("#nav:not([hidden])");

  // The call in progress, and its page.
  await page.click('a[href="#calls"]');
  await page.waitForSelector("#calls tbody tr button[data-call]");
  await page.click("#calls tbody tr:first-child button[data-call]");
  await page.waitForSelector("#telegram .emoji");
  found.heading = await page.textContent("#telegram h3");
  found.emojis = await page.$$eval("#telegram .emoji", (es) => es.map((e) => e.textContent));
  found.hint = await page.textContent("#telegram .hint");
  for (const k of ["version", "state", "path", "local_candidate", "remote_candidate", "rtt",
                   "loss", "remote_loss", "srtp", "remote_muted", "connect_ms", "reconnections",
                   "packets"])
    found[k] = (await field(k)).trim();
  found.local_title = await title("local_candidate");
  found.remote_title = await title("remote_candidate");
  found.diagram = await page.isVisible("svg#diagram");
  // The diagram's Telegram lane (issue 22): its heading and its events, in order.
  found.lane_heading = await page.textContent('svg#diagram text[data-lane$=":telegram"]');
  found.lane = await page.$$eval("svg#diagram g.tg-event", (es) => es.map((e) => e.dataset.event));
  // Every row of the diagram, top to bottom: the lane's events among the SIP packets.
  found.rows = await page.$$eval("svg#diagram g.arrow, svg#diagram g.tg-event", (gs) =>
    gs.map((g) => [g.getBBox().y, g.dataset.event ?? g.dataset.label])
      .sort((p, q) => p[0] - q[0]).map((r) => r[1]));
  await page.screenshot({ path: join(o.artefacts, "telegram-call.png"), fullPage: true });
  say("shown");

  await waitWord("muted");
  await page.waitForFunction(() =>
    document.querySelector('#telegram tr[data-field="remote_muted"] td')?.textContent === "yes",
    null, { timeout: 10000 });
  found.muted = (await field("remote_muted")).trim();
  say("muted");

  await waitWord("ended");
  await page.waitForFunction(() =>
    /ended/.test(document.querySelector('#telegram tr[data-field="state"] td')?.textContent ?? ""),
    null, { timeout: 10000 });
  found.ended_state = (await field("state")).trim();
  found.ended_emojis = await page.$$eval("#telegram .emoji", (es) => es.map((e) => e.textContent));
  say("ended");

  await waitWord("done");
  // Strings from the network are text: markup in them makes no element and runs nothing.
  found.fixture = await page.evaluate(async () => {
    const m = await import("/ui/telegram.js");
    window.injected = false;
    const bad = '<img src=x onerror="window.injected=true">';
    const s = m.telegramSection({
      version: bad, emojis: [bad, "\u{1F600}", "<b>x</b>", "&amp;"], state: "connected",
      path: "<i>relay</i>", local_candidate: `candidate:1 1 udp 1 10.0.0.1 ${bad} typ host`,
      remote_candidate: "candidate:2 1 UDP 2 2001:db8::1 3478 typ relay raddr 10.0.0.2 rport 9",
      srtp: bad, remote_muted: false, rtt_ms: 12.4, loss: 0.25, remote_loss: 0,
    });
    document.body.append(s);
    await new Promise((r) => setTimeout(r, 200));
    const out = {
      elements: Array.from(s.querySelectorAll("img, b, i, script")).length,
      injected: window.injected,
      emojis: Array.from(s.querySelectorAll(".emoji")).map((e) => e.textContent),
      version: s.querySelector('tr[data-field="version"] td').textContent,
      path: s.querySelector('tr[data-field="path"] td').textContent,
      remote: s.querySelector('tr[data-field="remote_candidate"] td').textContent,
      rtt: s.querySelector('tr[data-field="rtt"] td').textContent,
      loss: s.querySelector('tr[data-field="loss"] td').textContent,
      none: m.telegramSection(undefined),
    };
    // A reflector call that lost its path twice, with the jitter buffer's fields (issue 22).
    const r = m.telegramSection({
      version: "9.0.0", emojis: [], state: "reconnecting", path: "reflector", reflector_id: 3,
      connect_ms: 412.4, reconnection_count: 2, reconnecting_ms: 5300,
      reconnections: [{ at_ms: 10200, duration_ms: 5100 }, { at_ms: 40000 }],
      jitter_ms: 12.6, jitter_buffer_ms: 80, late: 4, concealed: 7,
      custom_parameters: { a: true, b: "x" }, skipped_tcp_reflectors: 1,
    }, true);
    const cell = (k) => r.querySelector(`tr[data-field="${k}"] td`)?.textContent ?? null;
    out.reflector = {
      path: cell("path"), connect: cell("connect_ms"), reconnections: cell("reconnections"),
      jitter: cell("jitter"), buffer: cell("jitter_buffer"), late: cell("late"),
      concealed: cell("concealed"), custom: cell("custom_parameters"),
      tcp: cell("skipped_tcp_reflectors"), emojis: r.querySelector(".emojis").textContent,
    };
    s.remove();
    return out;
  });
} catch (e) {
  found.error = String(e);
  found.page_text = (await page.textContent("main").catch(() => "")).slice(0, 2000);
  await page.screenshot({ path: join(o.artefacts, "telegram-failure.png"), fullPage: true })
    .catch(() => {});
} finally {
  await browser.close();
}
say("last");
process.exit(0);
