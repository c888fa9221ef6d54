"""The Jobs UI's graph layout: layers, crossing reduction, coordinates, cycles, size."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.web.layout import CycleError, crossings, layers, layout, order_layers


def test_longest_path_layers() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")]
    assert layers(["a", "b", "c", "d"], edges) == {"a": 0, "b": 1, "c": 2, "d": 1}


def test_cycle_is_refused_with_its_nodes() -> None:
    with pytest.raises(CycleError, match="cycle through b, c"):
        layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "b")])


def test_barycenter_untangles_crossed_edges() -> None:
    # Layer 0: a, b; layer 1 listed as y, x while a->x and b->y: one crossing until ordered.
    nodes = ["a", "b", "y", "x"]
    edges = [("a", "x"), ("b", "y")]
    unordered = [["a", "b"], ["y", "x"]]
    assert crossings(unordered, edges) == 1
    assert crossings(order_layers(layers(nodes, edges), edges), edges) == 0


def test_boxes_do_not_overlap_and_fit() -> None:
    nodes = ["ingest", "clean", "check", "gold", "quarantine"]
    edges = [("ingest", "clean"), ("clean", "check"), ("check", "gold"), ("check", "quarantine")]
    out = layout(nodes, edges)
    boxes = list(out.boxes.values())
    for i, a in enumerate(boxes):
        assert a.x >= 0
        assert a.x + out.node_width <= out.width
        assert a.y >= 0
        assert a.y + out.node_height <= out.height
        for b in boxes[i + 1 :]:
            apart_x = a.x + out.node_width <= b.x or b.x + out.node_width <= a.x
            apart_y = a.y + out.node_height <= b.y or b.y + out.node_height <= a.y
            assert apart_x or apart_y, (a, b)
    assert out.boxes["gold"].layer == out.boxes["quarantine"].layer == 3


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.data())
def test_every_edge_points_to_a_later_layer(n: int, data: st.DataObject) -> None:
    nodes = [f"t{i}" for i in range(n)]
    pairs = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
    edges = [(nodes[i], nodes[j]) for i, j in pairs if i < j]  # i < j: acyclic
    out = layout(nodes, edges)
    assert set(out.boxes) == set(nodes)
    for a, b in edges:
        assert out.boxes[a].layer < out.boxes[b].layer
        assert out.boxes[a].x < out.boxes[b].x


def test_ten_thousand_nodes_lay_out() -> None:
    rng = random.Random(7)
    nodes = [f"task_{i}" for i in range(10_000)]
    edges = [(nodes[rng.randrange(i)], nodes[i]) for i in range(1, 10_000) for _ in range(2)]
    out = layout(nodes, edges)
    assert len(out.boxes) == 10_000
    assert all(out.boxes[a].layer < out.boxes[b].layer for a, b in edges)
