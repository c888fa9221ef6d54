"""A job's task graph in words: its edges and marks (shared by the Jobs UI's SVG) and text renderings for
``sluice jobs graph``: an indented tree, Graphviz DOT and Mermaid. Pure functions over task dicts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Task = Mapping[str, Any]


def kind_of(task: Task) -> str:
    """A short word for tasks a graph marks: for-each, run-job and condition tasks; '' for others."""
    if "for_each_task" in task:
        return "for each"
    if "run_job_task" in task:
        return "run job"
    if "condition_task" in task:
        return "if/else"
    return ""


def edges_of(tasks: Sequence[Task]) -> list[tuple[str, str, str]]:
    """``(from, to, label)`` for every ``depends_on`` entry; the label is a condition outcome or ''."""
    keys = {str(t.get("task_key")) for t in tasks}
    out: list[tuple[str, str, str]] = []
    for task in tasks:
        for dep in task.get("depends_on") or ():
            parent = str(dep.get("task_key"))
            if parent in keys:
                out.append((parent, str(task["task_key"]), str(dep.get("outcome") or "")))
    return out


def _notes(task: Task) -> str:
    notes = []
    if kind_of(task):
        notes.append(f"[{kind_of(task)}]")
    run_if = task.get("run_if")
    if run_if and run_if != "ALL_SUCCESS":
        notes.append(f"(run if {run_if})")
    return "  " + " ".join(notes) if notes else ""


def text_tree(tasks: Sequence[Task]) -> str:
    """An indented tree from the tasks without dependencies. A task with several parents is drawn under
    the first one reached; under the others it appears once more, marked ``(see above)``."""
    by_key = {str(t["task_key"]): t for t in tasks}
    children: dict[str, list[tuple[str, str]]] = {k: [] for k in by_key}
    for parent, child, label in edges_of(tasks):
        children[parent].append((child, label))
    roots = [
        k
        for k, t in by_key.items()
        if not any(str(d.get("task_key")) in by_key for d in t.get("depends_on") or ())
    ]
    lines: list[str] = []
    shown: set[str] = set()

    def walk(key: str, label: str, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└── " if last else "├── ")
        edge = f"(if {label}) " if label else ""
        if key in shown:
            lines.append(f"{prefix}{branch}{edge}{key}  (see above)")
            return
        shown.add(key)
        lines.append(f"{prefix}{branch}{edge}{key}{_notes(by_key[key])}")
        below = prefix if top else prefix + ("    " if last else "│   ")
        kids = children[key]
        for i, (child, child_label) in enumerate(kids):
            walk(child, child_label, below, i == len(kids) - 1, top=False)

    for root in roots:
        walk(root, "", "", True, top=True)
    return "\n".join(lines)


def dot(tasks: Sequence[Task], name: str = "job") -> str:
    """Graphviz DOT, left to right; marked tasks carry their mark, edges their condition outcome."""
    lines = [
        f"digraph {json.dumps(name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="sans-serif"];',
    ]
    for task in tasks:
        key, kind = str(task["task_key"]), kind_of(task)
        label = f"{key}\n({kind})" if kind else key  # JSON writes the newline as \n, as DOT wants it
        lines.append(f"  {json.dumps(key)} [label={json.dumps(label)}];")
    for parent, child, label in edges_of(tasks):
        attrs = f" [label={json.dumps(label)}]" if label else ""
        lines.append(f"  {json.dumps(parent)} -> {json.dumps(child)}{attrs};")
    lines.append("}")
    return "\n".join(lines)


def mermaid(tasks: Sequence[Task]) -> str:
    """A Mermaid flowchart, left to right (node ids ``t0``, ``t1`` ...; the task keys are the labels)."""
    ids = {str(t["task_key"]): f"t{i}" for i, t in enumerate(tasks)}
    lines = ["flowchart LR"]
    for task in tasks:
        key, kind = str(task["task_key"]), kind_of(task)
        text = (f"{key}<br/>({kind})" if kind else key).replace('"', "#quot;")
        lines.append(f'  {ids[key]}["{text}"]')
    for parent, child, label in edges_of(tasks):
        arrow = f"-->|{label}|" if label else "-->"
        lines.append(f"  {ids[parent]} {arrow} {ids[child]}")
    return "\n".join(lines)
