// The actorium dashboard: polls /api/snapshot once a second and renders it. No build
// step and no libraries: one file, plain DOM. Requests carry the session cookie the
// server set when the page was opened with ?token=...
"use strict";
const POLL_MS = 1000;
const started = performance.now();
let snap = null;
let openSession = null;
let openLog = null;

const esc = (v) => String(v ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const bytes = (n) => {
  n = Number(n || 0);
  for (const u of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (Math.abs(n) < 1024 || u === "TiB") return u === "B" ? `${n} B` : `${n.toFixed(1)} ${u}`;
    n /= 1024;
  }
};
const bar = (frac) => `<span class="bar"><span style="width:${Math.round(
  Math.max(0, Math.min(1, frac || 0)) * 100)}%"></span></span>`;
const table = (head, rows) => rows.length
  ? `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${
    rows.join("")}</tbody></table>` : `<p class="muted">none</p>`;
const body = (id) => document.querySelector(`#${id} .body`);
const res = (r) => Object.entries(r || {}).map(([k, v]) =>
  `${k}: ${k.includes("memory") ? bytes(v) : v}`).join(", ");

async function getJSON(url) {
  const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function renderNodes(s) {
  body("nodes").innerHTML = table(
    ["node", "state", "host", "pid", "CPU", "memory", "resources (available/total)",
     "workers", "queued leases"],
    s.nodes.map((n) => `<tr><td>${esc(n.node_id)}${n.head ? " (head)" : ""}</td>
      <td class="${n.alive ? "alive" : "dead"}">${n.alive ? "ALIVE" : "DEAD"}</td>
      <td>${esc(n.host)}</td><td>${esc(n.pid)}</td>
      <td>${n.cpu_percent == null ? "-" : bar(n.cpu_percent / 100) + n.cpu_percent.toFixed(0) + "%"}</td>
      <td>${n.memory_total ? bar(n.memory_used / n.memory_total) + bytes(n.memory_used) +
        " / " + bytes(n.memory_total) : "-"}</td>
      <td class="wrap">${esc(Object.keys(n.resources || {}).filter((k) => !k.includes("memory"))
        .map((k) => `${k} ${(n.available || {})[k] ?? 0}/${n.resources[k]}`).join(", "))}</td>
      <td>${esc(Object.entries(n.workers || {}).map(([k, v]) => `${v} ${k}`).join(", "))}</td>
      <td>${esc(n.pending_leases)}</td></tr>`));
}

function renderActors(s) {
  const f = document.getElementById("actor-filter").value.toLowerCase();
  const rows = s.actors.filter((a) => !f || [a.name, a.class, a.state, a.node_id]
    .some((v) => String(v).toLowerCase().includes(f)));
  body("actors").innerHTML = `<p>${esc(Object.entries(s.actors_by_state)
    .map(([k, v]) => `${v} ${k}`).join(", ") || "no actors")}</p>` + table(
    ["name", "class", "state", "node", "pid", "resources", "restarts", "reason", ""],
    rows.map((a) => `<tr><td>${esc(a.name || "(unnamed)")}</td><td>${esc(a.class)}</td>
      <td class="${esc(a.state)}">${esc(a.state)}</td><td>${esc(a.node_id.slice(0, 12))}</td>
      <td>${esc(a.pid || "-")}</td><td>${esc(res(a.resources))}</td><td>${esc(a.restarts)}</td>
      <td class="wrap">${esc(a.reason)}</td>
      <td>${a.worker_id ? `<a class="act" data-log="${esc(a.node_id)}|worker-${esc(
        a.worker_id)}.log">log</a>` : ""}</td></tr>`));
}

function renderTasks(s) {
  body("tasks").innerHTML = table(["name", "submitted", "pending", "finished", "failed"],
    s.tasks.map((t) => `<tr><td>${esc(t.name)}</td><td>${t.submitted}</td><td>${t.pending}</td>
      <td>${t.finished}</td><td class="${t.failed ? "dead" : ""}">${t.failed}</td></tr>`));
  body("failures").innerHTML = s.failures.length ? s.failures.slice(0, 50).map((f) =>
    `<div class="failure"><b>${esc(f.name)}</b> <span class="muted">task ${esc(f.task_id)}
     · node ${esc((f.node_id || "").slice(0, 12))} · pid ${esc(f.pid)} ·
     ${new Date(f.time * 1000).toLocaleTimeString()}</span>
     <pre class="traceback">${esc(f.error)}</pre></div>`).join("")
    : `<p class="muted">no failed tasks</p>`;
}

function renderSessions(s) {
  body("sessions").innerHTML = table(["session event log", "events"],
    s.sessions.map((x) => `<tr><td><a class="act" data-session="${esc(x.key)}">${esc(x.key)}</a>
      </td><td>${x.events}</td></tr>`));
}

function renderSandboxes(s) {
  const sb = s.sandbox;
  body("sandboxes").innerHTML = `<p>${sb.starts} started; violations: ${esc(Object.entries(
    sb.violations).map(([k, v]) => `${k} ${v}`).join(", ") || "none")}</p>` + table(
    ["time", "kind", "where", "node"], sb.recent.slice(0, 50).map((v) => `<tr>
      <td>${new Date(v.time * 1000).toLocaleTimeString()}</td><td class="dead">${esc(v.kind)}</td>
      <td>${esc(v.where)}</td><td>${esc((v.node_id || "").slice(0, 12))}</td></tr>`));
}

function renderStore(s) {
  const st = s.store;
  body("store").innerHTML = `<p>${bar(st.capacity ? st.used / st.capacity : 0)}
    ${bytes(st.used)} of ${bytes(st.capacity)} used, ${st.num_objects} objects;
    ${bytes(st.spilled)} spilled (${st.num_spilled} objects)</p>` + table(
    ["node", "used", "capacity", "objects", "spilled"],
    s.nodes.filter((n) => n.alive).map((n) => `<tr><td>${esc(n.node_id)}</td>
      <td>${bytes(n.store.used)}</td><td>${bytes(n.store.capacity)}</td>
      <td>${n.store.num_objects ?? 0}</td><td>${bytes(n.store.spilled)}</td></tr>`));
  document.getElementById("log-files").innerHTML = "Nodes: " + s.nodes.filter((n) => n.alive)
    .map((n) => `<a class="act" data-files="${esc(n.node_id)}">${esc(n.node_id)}</a>`).join(" ");
}

function render(s) {
  document.getElementById("summary").textContent =
    `${s.nodes.filter((n) => n.alive).length} nodes · ${s.actors.length} actors · ` +
    `${s.tasks.reduce((a, t) => a + t.submitted, 0)} calls`;
  renderNodes(s); renderActors(s); renderTasks(s); renderSessions(s);
  renderSandboxes(s); renderStore(s);
  if (!document.body.dataset.rendered) {
    document.body.dataset.rendered = String(Math.round(performance.now()));
  }
}

async function showEvents(key) {
  openSession = key;
  const events = await getJSON(`/api/events?key=${encodeURIComponent(key)}`);
  document.getElementById("events").innerHTML = `<h3>${esc(key)}</h3>` + table(
    ["#", "event"], events.map((e, i) => `<tr><td>${i}</td><td class="wrap"><code>${
      esc(JSON.stringify(e))}</code></td></tr>`));
}

async function showLog(node, file) {
  openLog = [node, file];
  const r = await getJSON(`/api/logs?node=${encodeURIComponent(node)}&file=${
    encodeURIComponent(file)}&offset=-500`);
  const pre = document.getElementById("log-text");
  pre.dataset.file = file;
  pre.textContent = `==> ${file} (node ${node}) <==\n` + (r.size < 0 ? "(no such log)" : r.data);
  document.getElementById("logs").scrollIntoView();
}

async function showFiles(node) {
  const files = await getJSON(`/api/logs?node=${encodeURIComponent(node)}&file=*`);
  document.getElementById("log-files").innerHTML = `Logs of ${esc(node)}: ` + files.map(
    ([name, size]) => `<a class="act" data-log="${esc(node)}|${esc(name)}">${esc(name)}</a>
      <span class="muted">${bytes(size)}</span>`).join(" · ");
}

document.addEventListener("click", (ev) => {
  const t = ev.target.closest("a.act");
  if (!t) return;
  if (t.dataset.session) showEvents(t.dataset.session);
  if (t.dataset.log) { const [n, f] = t.dataset.log.split("|"); showLog(n, f); }
  if (t.dataset.files) showFiles(t.dataset.files);
});
document.getElementById("actor-filter").addEventListener("input", () => snap && renderActors(snap));

async function poll() {
  try {
    snap = await getJSON("/api/snapshot");
    render(snap);
    document.getElementById("status").textContent =
      `updated ${new Date().toLocaleTimeString()}`;
    if (openLog) showLog(...openLog);
  } catch (e) {
    document.getElementById("status").textContent = `not updated: ${e.message}`;
  }
  setTimeout(poll, POLL_MS);
}
// Deep links: #session=KEY opens a session's events, #log=NODE|FILE a log.
function openFromHash() {
  const h = decodeURIComponent(location.hash.slice(1));
  if (h.startsWith("session=")) showEvents(h.slice(8)).catch(() => {});
  if (h.startsWith("log=")) { const [n, f] = h.slice(4).split("|"); showLog(n, f).catch(() => {}); }
}
window.addEventListener("hashchange", openFromHash);
openFromHash();
poll();
