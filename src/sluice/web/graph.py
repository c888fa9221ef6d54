"""A job's task graph as SVG: nodes from :mod:`sluice.web.layout`, edges from ``depends_on``.

Nodes carry ``data-task`` (their key) and a ``state-*`` class the run page's script recolours; each shows
its key, a kind badge (for-each, run-job, condition) and a text status, never colour alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from sluice.taskgraph import edges_of, kind_of
from sluice.web.layout import layout

NODE_W = 190.0
NODE_H = 46.0
#: Most characters of a task key shown on a node (the whole key is in its tooltip).
KEY_CHARS = 24
#: Graphs up to this many nodes shrink to fit the page; larger ones keep their size and scroll.
FIT_NODES = 60


@dataclass(frozen=True)
class NodeState:
    """How a node looks in a run: its css state (``succeeded``, ``failed`` ...), text and link."""

    css: str
    text: str
    href: str | None = None


_TYPES = {
    "notebook_task": "Notebook",
    "spark_python_task": "Python script",
    "python_wheel_task": "Python wheel",
    "sql_task": "SQL",
    "dbt_task": "dbt",
    "pipeline_task": "Pipeline",
    "spark_jar_task": "JAR",
    "spark_submit_task": "Spark submit",
}


def type_of(task: Mapping[str, Any]) -> str:
    """The task's type in words (shown on nodes outside a run)."""
    return next((words for field, words in _TYPES.items() if field in task), "")


def svg(
    tasks: Sequence[Mapping[str, Any]],
    states: Mapping[str, NodeState] | None = None,
    *,
    link: Mapping[str, str] | None = None,
) -> Markup:
    """The graph of ``tasks`` (job settings' task dicts) as an inline ``<svg>``."""
    keys = [str(t["task_key"]) for t in tasks]
    edges = edges_of(tasks)
    placed = layout(keys, [(a, b) for a, b, _ in edges], node_width=NODE_W, node_height=NODE_H)
    states = states or {}
    fit = " fit" if len(keys) <= FIT_NODES else ""
    parts = [
        f'<svg class="graph{fit}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Task graph" '
        f'width="{placed.width:.0f}" height="{placed.height:.0f}" '
        f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>',
    ]
    for a, b, label in edges:
        s, t = placed.boxes[a], placed.boxes[b]
        x1, y1 = s.x + NODE_W, s.y + NODE_H / 2
        x2, y2 = t.x, t.y + NODE_H / 2
        mid = (x1 + x2) / 2
        parts.append(
            f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} '
            f'{mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" marker-end="url(#arrow)"/>'
        )
        if label:
            # Near the target's end, where edges from one condition have fanned apart.
            lx, ly = x2 - 8, y2 - 6
            parts.append(
                f'<text class="edge-label" x="{lx:.0f}" y="{ly:.0f}" text-anchor="end">{escape(label)}</text>'
            )
    by_key = {str(t["task_key"]): t for t in tasks}
    for key in keys:
        box = placed.boxes[key]
        state = states.get(key)
        kind = kind_of(by_key[key])
        css = f"node state-{state.css}" if state else "node"
        shown = key if len(key) <= KEY_CHARS else key[: KEY_CHARS - 1] + "…"
        href = (state.href if state else None) or (link or {}).get(key)
        body = [
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_W:.0f}" height="{NODE_H:.0f}" rx="6"/>',
            f'<text class="key" x="{box.x + 10:.0f}" y="{box.y + 19:.0f}">{escape(shown)}</text>',
            f'<text class="status" x="{box.x + 10:.0f}" y="{box.y + 36:.0f}" data-status="{escape(key)}">'
            f"{escape(state.text if state else '' if kind else type_of(by_key[key]))}</text>",
        ]
        if kind:
            body.append(
                f'<text class="kind" x="{box.x + NODE_W - 8:.0f}" y="{box.y + 36:.0f}" '
                f'text-anchor="end">{escape(kind)}</text>'
            )
        inner = "".join(body)
        if href:
            inner = f'<a href="{escape(href)}">{inner}</a>'
        parts.append(
            f'<g class="{css}" data-task="{escape(key)}"><title>{escape(key)}'
            f"{escape(' (' + kind + ')') if kind else ''}</title>{inner}</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated value above is escaped or a number
