// Sluice Jobs UI: the few live parts of the pages. Written for this project; no libraries.
"use strict";

function applySnapshot(snap) {
  for (const [key, t] of Object.entries(snap.tasks)) {
    const node = document.querySelector(`svg.graph g.node[data-task="${CSS.escape(key)}"]`);
    if (!node) continue;
    node.setAttribute("class", `node state-${t.css}`);
    const status = node.querySelector("text.status");
    if (status) status.textContent = t.text;
    if (t.href && !node.querySelector("a")) {
      const a = document.createElementNS("http://www.w3.org/2000/svg", "a");
      a.setAttribute("href", t.href);
      while (node.childNodes.length > 1) a.appendChild(node.childNodes[1]);
      node.appendChild(a);
    }
  }
  const badge = document.getElementById("run-state");
  if (badge) {
    badge.className = `badge state-${snap.run.css}`;
    badge.textContent = snap.run.text;
  }
  const message = document.getElementById("run-message");
  if (message) message.textContent = snap.run.text + (snap.run.message ? `: ${snap.run.message}` : "");
  const took = document.getElementById("run-duration");
  if (took) took.textContent = snap.run.duration;
  document.querySelectorAll("[data-when]").forEach((el) => {
    el.hidden = (el.dataset.when === "terminal") !== snap.run.terminal;
  });
  document.body.dataset.runState = snap.run.terminal ? "terminal" : "active";
}

function watchRun(graph) {
  const source = new EventSource(graph.dataset.events);
  source.addEventListener("run", (e) => applySnapshot(JSON.parse(e.data)));
  source.addEventListener("end", () => source.close());
}

async function tailLog(pre) {
  let offset = 0;
  for (;;) {
    const response = await fetch(`${pre.dataset.log}&offset=${offset}`, { credentials: "same-origin" });
    if (!response.ok) return;
    const chunk = await response.json();
    if (chunk.text) pre.append(chunk.text);
    offset = chunk.offset;
    if (chunk.done) return;
    if (!chunk.text) await new Promise((r) => setTimeout(r, 500));
  }
}

async function openRepair(button) {
  const dialog = document.getElementById("repair-dialog");
  const response = await fetch(button.dataset.repair, { credentials: "same-origin" });
  dialog.innerHTML = await response.text();
  dialog.showModal();
}

document.addEventListener("click", (e) => {
  const target = e.target.closest("[data-open], [data-close], [data-repair]");
  if (!target) return;
  if (target.dataset.repair !== undefined) openRepair(target);
  else if (target.dataset.open) document.getElementById(target.dataset.open).showModal();
  else target.closest("dialog").close();
});

document.addEventListener("DOMContentLoaded", () => {
  const graph = document.getElementById("run-graph");
  if (graph) {
    applySnapshot(JSON.parse(graph.dataset.snapshot));
    if (document.body.dataset.runState !== "terminal") watchRun(graph);
  }
  document.querySelectorAll("pre[data-log]").forEach((pre) => tailLog(pre));
  document.querySelectorAll("details[data-load]").forEach((d) =>
    d.addEventListener("toggle", async () => {
      if (!d.open || d.dataset.loaded) return;
      const response = await fetch(d.dataset.load, { credentials: "same-origin" });
      d.querySelector("pre").textContent = await response.text();
      d.dataset.loaded = "true";
    }));
  document.querySelectorAll("select[data-navigate]").forEach((s) =>
    s.addEventListener("change", () => { window.location = s.value; }));
});
