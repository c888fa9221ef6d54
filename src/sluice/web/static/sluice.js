// Sluice Jobs UI: the few live parts of the pages. Written for this project; no libraries.
"use strict";

let graphNodes = null;

function applySnapshot(snap) {
  if (!graphNodes) {
    graphNodes = new Map();
    document.querySelectorAll("svg.graph g.node").forEach((g) => graphNodes.set(g.dataset.task, g));
  }
  for (const [key, t] of Object.entries(snap.tasks)) {
    const node = graphNodes.get(key);
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

async function loadInto(holder, url) {
  const pre = holder.querySelector("pre");
  const response = await fetch(url, { credentials: "same-origin" });
  pre.textContent = await response.text();
  pre.dataset.source = url;
}

// A format toggle (the job's settings as JSON or as bundle YAML): one button pressed at a time.
document.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-format]");
  if (!button) return;
  button.parentElement.querySelectorAll("button[data-format]").forEach((b) =>
    b.setAttribute("aria-pressed", String(b === button)));
  loadInto(button.closest("details"), button.dataset.format);
});

document.addEventListener("click", (e) => {
  const target = e.target.closest("[data-open], [data-close], [data-repair]");
  if (!target) return;
  if (target.dataset.repair !== undefined) openRepair(target);
  else if (target.dataset.open) document.getElementById(target.dataset.open).showModal();
  else target.closest("dialog").close();
});

// Pan and zoom of a task graph: the server lays it out; here only its viewBox moves. Drag or wheel pans,
// Ctrl/Cmd + wheel (or a pinch) and the buttons zoom, arrows/+/-/0 on the focused graph too. Zoomed far
// out, the graph drops its text (class "far"), so thousands of nodes stay quick to draw.
const MIN_SCALE = 0.02;
const MAX_SCALE = 4;
const FAR_SCALE = 0.35;

function panZoom(wrap) {
  const svg = wrap.querySelector("svg.graph");
  if (!svg) return;
  const full = svg.viewBox.baseVal;
  const W = full.width;
  const H = full.height;
  // The SVG keeps its laid-out size; a CSS transform moves and scales it inside the frame, so panning
  // and zooming repaint nothing and lay out nothing: the browser only rasters what comes into view.
  svg.classList.add("zoomable");
  const fits = svg.classList.contains("fit");
  wrap.classList.add("zoomable");
  const ratio = fits ? Math.min(1, (wrap.clientWidth || W) / W) : 1;
  wrap.style.height = `${Math.max(60, Math.min(H * ratio, window.innerHeight * 0.7))}px`;
  const view = { x: 0, y: 0, scale: 1 };
  let frame = 0;

  const size = () => ({ w: wrap.clientWidth || 1, h: wrap.clientHeight || 1 });
  const draw = () => {
    frame = 0;
    svg.style.transform = `translate(${-view.x * view.scale}px, ${-view.y * view.scale}px) scale(${view.scale})`;
    svg.classList.toggle("far", view.scale < FAR_SCALE);
    wrap.dataset.scale = view.scale.toFixed(3);
  };
  const schedule = () => { if (!frame) frame = requestAnimationFrame(draw); };
  const clamp = () => {
    const { w, h } = size();
    const vw = w / view.scale;
    const vh = h / view.scale;
    view.x = Math.min(Math.max(view.x, Math.min(0, W - vw)), Math.max(0, W - vw));
    view.y = Math.min(Math.max(view.y, Math.min(0, H - vh)), Math.max(0, H - vh));
  };
  const zoomAt = (factor, px, py) => {
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.scale * factor));
    view.x += px / view.scale - px / next;
    view.y += py / view.scale - py / next;
    view.scale = next;
    clamp();
    schedule();
  };
  const fit = () => {
    const { w, h } = size();
    view.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, Math.min(w / W, h / H, 1)));
    view.x = 0;
    view.y = 0;
    clamp();
    schedule();
  };
  const panBy = (dx, dy) => { view.x += dx / view.scale; view.y += dy / view.scale; clamp(); schedule(); };

  wrap.addEventListener("wheel", (e) => {
    const r = wrap.getBoundingClientRect();
    if (e.ctrlKey || e.metaKey) {
      e.preventDefault();
      zoomAt(Math.exp(-e.deltaY * 0.002), e.clientX - r.left, e.clientY - r.top);
      return;
    }
    const { w, h } = size();
    const whole = W * view.scale <= w + 1 && H * view.scale <= h + 1;
    if (whole) return; // nothing to pan: the page scrolls
    e.preventDefault();
    panBy(e.shiftKey ? e.deltaY : e.deltaX, e.shiftKey ? 0 : e.deltaY);
  }, { passive: false });

  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    wrap.focus({ preventScroll: true }); // then the arrow keys, +, - and 0 act on this graph
    drag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!drag.moved) { svg.setPointerCapture(drag.id); svg.classList.add("dragging"); }
    drag.moved = true;
    drag.x = e.clientX;
    drag.y = e.clientY;
    panBy(-dx, -dy);
  });
  const endDrag = () => {
    if (drag && drag.moved) {
      // A drag that ends on a node is not a click on its link.
      svg.addEventListener("click", (c) => { c.preventDefault(); c.stopPropagation(); }, { capture: true, once: true });
      setTimeout(() => svg.classList.remove("dragging"), 0);
    }
    drag = null;
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  wrap.tabIndex = 0;
  wrap.addEventListener("keydown", (e) => {
    const { w, h } = size();
    const step = 60;
    const keys = {
      ArrowLeft: () => panBy(-step, 0), ArrowRight: () => panBy(step, 0),
      ArrowUp: () => panBy(0, -step), ArrowDown: () => panBy(0, step),
      "+": () => zoomAt(1.25, w / 2, h / 2), "=": () => zoomAt(1.25, w / 2, h / 2),
      "-": () => zoomAt(0.8, w / 2, h / 2), "0": fit,
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });

  const bar = document.createElement("div");
  bar.className = "graph-tools";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Graph view");
  for (const [label, title, act] of [
    ["+", "Zoom in", () => { const { w, h } = size(); zoomAt(1.25, w / 2, h / 2); }],
    ["\u2212", "Zoom out", () => { const { w, h } = size(); zoomAt(0.8, w / 2, h / 2); }],
    ["Fit", "Show the whole graph", fit],
  ]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.addEventListener("click", act);
    bar.appendChild(b);
  }
  const hint = document.createElement("span");
  hint.className = "muted";
  hint.textContent = `${svg.querySelectorAll("g.node").length} tasks · drag or scroll to pan, Ctrl + scroll to zoom`;
  bar.appendChild(hint);
  wrap.before(bar);
  wrap.graphView = { fit, zoomAt, panBy, view };
  if (fits) fit(); else draw();
  window.addEventListener("resize", () => { clamp(); schedule(); });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".graph-wrap").forEach(panZoom);
  const graph = document.getElementById("run-graph");
  if (graph) {
    applySnapshot(JSON.parse(graph.dataset.snapshot));
    if (document.body.dataset.runState !== "terminal") watchRun(graph);
  }
  document.querySelectorAll("pre[data-log]").forEach((pre) => tailLog(pre));
  document.querySelectorAll("details[data-load]").forEach((d) =>
    d.addEventListener("toggle", () => {
      if (!d.open || d.dataset.loaded) return;
      loadInto(d, d.dataset.load);
      d.dataset.loaded = "true";
    }));
  document.querySelectorAll("select[data-navigate]").forEach((s) =>
    s.addEventListener("change", () => { window.location = s.value; }));
});
