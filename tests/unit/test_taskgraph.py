"""``sluice jobs graph``'s renderings: the text tree, Graphviz DOT and Mermaid."""

from __future__ import annotations

from typing import Any

from sluice.taskgraph import dot, mermaid, text_tree

TASKS: list[dict[str, Any]] = [
    {"task_key": "ingest"},
    {"task_key": "check", "depends_on": [{"task_key": "ingest"}], "condition_task": {"op": "EQUAL_TO"}},
    {"task_key": "gold", "depends_on": [{"task_key": "check", "outcome": "true"}]},
    {"task_key": "quarantine", "depends_on": [{"task_key": "check", "outcome": "false"}]},
    {"task_key": "months", "depends_on": [{"task_key": "gold"}], "for_each_task": {"inputs": "[1]"}},
    {"task_key": "child", "depends_on": [{"task_key": "gold"}], "run_job_task": {"job_id": 2}},
    {
        "task_key": "publish",
        "depends_on": [{"task_key": "months"}, {"task_key": "child"}],
        "run_if": "ALL_DONE",
    },
]


def test_text_tree_marks_kinds_outcomes_run_if_and_shared_children() -> None:
    assert text_tree(TASKS) == "\n".join(
        [
            "ingest",
            "└── check  [if/else]",
            "    ├── (if true) gold",
            "    │   ├── months  [for each]",
            "    │   │   └── publish  (run if ALL_DONE)",
            "    │   └── child  [run job]",
            "    │       └── publish  (see above)",
            "    └── (if false) quarantine",
        ]
    )


def test_dot_and_mermaid_carry_edges_labels_and_marks() -> None:
    text = dot(TASKS, 'nightly "sales"')
    assert text.startswith('digraph "nightly \\"sales\\"" {')
    assert '"check" -> "gold" [label="true"];' in text
    assert '"months" [label="months\\n(for each)"];' in text
    assert text.count("->") == 7
    chart = mermaid(TASKS)
    assert chart.splitlines()[0] == "flowchart LR"
    assert "  t1 -->|false| t3" in chart
    assert '  t5["child<br/>(run job)"]' in chart
