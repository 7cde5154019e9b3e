// Herald's status page. Plain JavaScript, no dependencies: it reads the admin API with the
// token kept in this tab's session storage, and renders with textContent only (no HTML from
// data). Refreshes every five seconds.
"use strict";

const TOKEN_KEY = "herald-token";
const ZONE_KEY = "herald-zone";
const REFRESH_MS = 5000;
const PAGE = 50;

const $ = (sel) => document.querySelector(sel);
let zone = sessionStorage.getItem(ZONE_KEY);
let nextNode = null;
let timer = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (k === "width") e.style.width = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error((json && json.error) || res.status + " " + res.statusText);
    err.status = res.status;
    throw err;
  }
  return json;
}

const when = (unix) => (unix ? new Date(unix * 1000).toLocaleString() : "—");
const short = (commit) => (commit ? commit.slice(0, 12) : "—");

function showLogin(message) {
  clearInterval(timer);
  $("#status").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#token").focus();
}

function renderZones(zones) {
  const body = $("#zones tbody");
  body.replaceChildren();
  for (const z of zones) {
    const s = z.node_states;
    const row = el("tr", { "data-zone": z.zone, class: z.zone === zone ? "selected" : "" },
      el("td", {}, el("a", { href: "#", text: z.zone })),
      el("td", { class: "num serial", text: String(z.serial) }),
      el("td", { class: "num nodes", text: String(z.nodes) }),
      el("td", { class: "num current", text: String(s.current) }),
      el("td", { class: "num behind", text: String(s.behind) }),
      el("td", { class: "num failed", text: String(s.failed) }),
      el("td", { class: "num silent", text: String(s.silent) }));
    row.querySelector("a").addEventListener("click", (ev) => {
      ev.preventDefault();
      zone = z.zone;
      sessionStorage.setItem(ZONE_KEY, zone);
      refresh(true);
    });
    body.append(row);
  }
}

function renderSecondaries(z) {
  const body = $("#secondaries tbody");
  body.replaceChildren();
  if (!z.secondaries.length) {
    body.append(el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No secondaries." })));
  }
  for (const s of z.secondaries) {
    const n = s.last_notify;
    const t = s.last_transfer;
    const behind = t ? (z.serial - t.serial) >>> 0 : null;
    body.append(el("tr", { "data-address": s.address },
      el("td", { text: s.address }),
      el("td", { text: n ? `serial ${n.serial}, ${n.acked ? "acknowledged" : n.attempts + (n.attempts === 1 ? " attempt" : " attempts")}, ${when(n.sent)}` : "—" }),
      el("td", { text: t ? `${t.kind} to serial ${t.serial}, ${when(t.at)}` : "—" }),
      el("td", { class: "num behind-by " + (s.behind ? "status-failed" : "status-applied"),
        text: behind === null ? (s.behind ? "behind" : "—") : behind + " serials" })));
  }
}

function bar(w) {
  const pct = (n) => (w.nodes ? (100 * n) / w.nodes : 0) + "%";
  const waiting = Math.max(0, w.published - w.applied - w.failed);
  return el("div", { class: "bar", title: `${w.applied} applied, ${w.failed} failed, ${waiting} waiting` },
    el("span", { class: "applied", width: pct(w.applied) }),
    el("span", { class: "failed", width: pct(w.failed) }),
    el("span", { class: "waiting", width: pct(waiting) }));
}

function renderRollouts(list) {
  const box = $("#rollouts");
  box.replaceChildren();
  if (!list.length) box.append(el("p", { class: "muted", text: "No rollouts." }));
  for (const r of list) {
    const actions = el("span", { class: "actions" });
    const act = (name, label, body, confirmText) => {
      const b = el("button", { type: "button", class: name, text: label });
      b.addEventListener("click", async () => {
        if (confirmText && !window.confirm(confirmText)) return;
        try {
          await api("POST", `/v1/zones/${zone}/rollouts/${r.id}/${name === "revert" ? "abort" : name}`, body);
          refresh(false);
        } catch (e) {
          $("#error").textContent = `rollout ${r.id}: ${e.message}`;
        }
      });
      actions.append(b);
    };
    if (r.state === "running") act("pause", "Pause");
    if (r.state === "paused" || r.state === "halted") act("resume", "Resume");
    if (["running", "paused", "halted"].includes(r.state)) {
      act("abort", "Abort", { revert: false }, `Abort rollout ${r.id}?`);
      act("revert", "Abort and revert", { revert: true },
        `Abort rollout ${r.id} and publish every touched node's previous commit?`);
    }
    const card = el("div", { class: "rollout", "data-id": String(r.id), "data-state": r.state },
      el("h3", {},
        el("span", { text: `#${r.id}` }),
        el("code", { text: short(r.commit), title: r.commit }),
        el("span", { class: "state state-" + r.state, text: r.state }),
        el("span", { class: "muted", text: `${r.total.published}/${r.total.nodes} published, ${r.total.applied} applied, ${r.total.failed} failed` }),
        actions));
    if (r.reason) card.append(el("p", { class: "reason", text: r.reason }));
    r.progress.forEach((w, i) => {
      card.append(el("div", { class: "wave" + (i === r.wave ? " current" : ""), "data-wave": String(i),
          "data-nodes": String(w.nodes), "data-published": String(w.published),
          "data-applied": String(w.applied), "data-failed": String(w.failed) },
        el("span", { class: "label", text: w.label }),
        bar(w),
        el("span", { class: "counts", text: `${w.published}/${w.nodes} published, ${w.applied} applied, ${w.failed} failed` })));
    });
    box.append(card);
  }
}

function nodeRow(n) {
  const a = n.applied;
  return el("tr", { "data-node": n.node },
    el("td", { text: n.node }),
    el("td", {}, el("code", { class: "commit", text: short(n.commit), title: n.commit })),
    el("td", { class: "num seq", text: String(n.seq) }),
    el("td", {}, el("code", { class: "applied-commit", text: a ? short(a.commit) : "—", title: a ? a.commit : "" })),
    el("td", { class: "num applied-seq", text: a ? String(a.seq) : "—" }),
    el("td", { class: "status" + (a ? " status-" + a.status : ""), text: a ? a.status : "no report" }),
    el("td", { class: "received", text: a ? when(a.received) : "—" }));
}

async function loadNodes(append) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const prefix = $("#prefix").value.trim().toLowerCase();
  if (prefix) params.set("prefix", prefix);
  if ($("#state").value) params.set("state", $("#state").value);
  if (append && nextNode) params.set("after", nextNode);
  const page = await api("GET", `/v1/zones/${zone}/nodes?${params}`);
  const body = $("#nodes tbody");
  if (!append) body.replaceChildren();
  for (const n of page.nodes) body.append(nodeRow(n));
  nextNode = page.next;
  $("#more").hidden = !nextNode;
}

async function refresh(withNodes) {
  try {
    const { zones } = await api("GET", "/v1/zones");
    if (!zones.some((z) => z.zone === zone)) zone = zones.length ? zones[0].zone : null;
    renderZones(zones);
    document.querySelectorAll(".zone-name").forEach((e) => (e.textContent = zone || "—"));
    const z = zones.find((z) => z.zone === zone);
    if (z) {
      renderSecondaries(z);
      renderRollouts((await api("GET", `/v1/zones/${zone}/rollouts`)).rollouts);
      if (withNodes) await loadNodes(false);
    }
    $("#error").textContent = "";
    $("#updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("That token was refused.");
    } else {
      $("#error").textContent = e.message;
    }
  }
}

function start() {
  $("#login").hidden = true;
  $("#status").hidden = false;
  $("#logout").hidden = false;
  refresh(true);
  clearInterval(timer);
  // The node table keeps what was searched and paged; the rest refreshes.
  timer = setInterval(() => refresh(false), REFRESH_MS);
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value);
  $("#token").value = "";
  start();
});
$("#logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});
$("#search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadNodes(false).catch((e) => ($("#error").textContent = e.message));
});
$("#more").addEventListener("click", () => loadNodes(true).catch((e) => ($("#error").textContent = e.message)));

if (sessionStorage.getItem(TOKEN_KEY)) start();
else showLogin();
