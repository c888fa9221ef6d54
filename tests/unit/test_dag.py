"""The task graph: cycles, the whole run_if table, incremental progress, job results, run-now ``only``."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.dag import (
    RUN,
    Dep,
    DepResult,
    Graph,
    Node,
    Progress,
    decide,
    find_cycle,
    job_result,
    select_only,
)
from sluice.errors import InternalError, InvalidJobError, InvalidRequestError
from sluice.states import ResultState, RunIf

R = ResultState

# ---------------------------------------------------------------------------------------------- cycles


def test_find_cycle_none_for_a_dag() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    assert find_cycle({}) is None


def test_find_cycle_returns_the_loop_with_the_first_key_repeated() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]


def test_find_cycle_self_loop() -> None:
    assert find_cycle({"x": [], "a": ["a"]}) == ["a", "a"]


def test_find_cycle_reports_only_the_loop_not_the_path_into_it() -> None:
    assert find_cycle({"entry": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]


def test_find_cycle_ignores_unknown_dependencies() -> None:
    assert find_cycle({"a": ["ghost"]}) is None


def test_find_cycle_is_deterministic() -> None:
    deps = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}
    assert find_cycle(deps) == find_cycle(dict(deps)) == ["a", "b", "a"]


def test_find_cycle_deep_chain_does_not_recurse() -> None:
    n = 20_000
    deps = {f"t{i}": [f"t{i + 1}"] for i in range(n)}
    deps[f"t{n}"] = ["t0"]
    cycle = find_cycle(deps)
    assert cycle is not None
    assert cycle[0] == cycle[-1] == "t0"
    assert len(cycle) == n + 2


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=20))
def test_find_cycle_result_is_a_real_cycle(edges: list[tuple[int, int]]) -> None:
    deps: dict[str, list[str]] = {f"n{i}": [] for i in range(8)}
    for a, b in edges:
        deps[f"n{a}"].append(f"n{b}")
    cycle = find_cycle(deps)
    acyclic = _is_acyclic(deps)
    assert (cycle is None) == acyclic
    if cycle is not None:
        assert cycle[0] == cycle[-1]
        for src, dst in itertools.pairwise(cycle):
            assert dst in deps[src]


def _is_acyclic(deps: Mapping[str, list[str]]) -> bool:
    remaining = {k: set(v) for k, v in deps.items()}
    while remaining:
        free = [k for k, v in remaining.items() if not (v & remaining.keys())]
        if not free:
            return False
        for k in free:
            del remaining[k]
    return True


# ---------------------------------------------------------------------------------------------- graph


def test_build_indexes_downstream_leaves_and_order() -> None:
    g = Graph.build(
        [
            Node("c", (Dep("a"), Dep("b"))),
            Node("a"),
            Node("b", (Dep("a"),)),
            Node("d", (Dep("a"),)),
        ]
    )
    assert g.downstream["a"] == ("c", "b", "d")
    assert g.downstream["b"] == ("c",)
    assert set(g.leaves) == {"c", "d"}
    pos = {k: i for i, k in enumerate(g.order)}
    assert pos["a"] < pos["b"] < pos["c"]
    assert pos["a"] < pos["d"]


def test_build_dedupes_repeated_dependencies() -> None:
    g = Graph.build([Node("a"), Node("b", (Dep("a"), Dep("a")))])
    assert g.downstream["a"] == ("b",)


def test_build_rejects_a_cycle_naming_it() -> None:
    with pytest.raises(InvalidJobError, match=r"cycle: a -> b -> a"):
        Graph.build([Node("a", (Dep("b"),)), Node("b", (Dep("a"),))])


def test_build_rejects_unknown_dependency_with_suggestion() -> None:
    with pytest.raises(InvalidJobError) as info:
        Graph.build([Node("ingest"), Node("clean", (Dep("ingets"),))])
    (problem,) = info.value.problems
    assert problem.task == "clean"
    assert "unknown task 'ingets'" in problem.message
    assert "did you mean 'ingest'" in problem.message


def test_build_rejects_duplicate_keys() -> None:
    with pytest.raises(InvalidJobError, match="duplicate task_key 'a'"):
        Graph.build([Node("a"), Node("a")])


def test_build_large_fan_out_and_fan_in() -> None:
    n = 1000
    nodes = [Node("root")]
    nodes += [Node(f"w{i}", (Dep("root"),)) for i in range(n)]
    nodes.append(Node("join", tuple(Dep(f"w{i}") for i in range(n))))
    g = Graph.build(nodes)
    assert len(g.downstream["root"]) == n
    assert g.leaves == ("join",)
    assert g.order[0] == "root"
    assert g.order[-1] == "join"


# ---------------------------------------------------------------------------------------------- run_if table

# A dependency "kind" in the table: the parent's result plus, for "branch not taken", a condition outcome
# that differs from the edge's wanted outcome.
KINDS: dict[str, tuple[ResultState, str | None, str | None]] = {
    # kind: (parent result, parent outcome, edge outcome)
    "SUCCESS": (R.SUCCESS, None, None),
    "SUCCESS_WITH_FAILURES": (R.SUCCESS_WITH_FAILURES, None, None),
    "EXCLUDED": (R.EXCLUDED, None, None),
    "BRANCH_TAKEN": (R.SUCCESS, "true", "true"),
    "BRANCH_NOT_TAKEN": (R.SUCCESS, "false", "true"),
    "FAILED": (R.FAILED, None, None),
    "TIMEDOUT": (R.TIMEDOUT, None, None),
    "UPSTREAM_FAILED": (R.UPSTREAM_FAILED, None, None),
    "CANCELED": (R.CANCELED, None, None),
    "UPSTREAM_CANCELED": (R.UPSTREAM_CANCELED, None, None),
    "DISABLED": (R.DISABLED, None, None),
    "CONDITION_FAILED": (R.FAILED, None, "true"),
}

_CLASS = {
    "SUCCESS": "ok",
    "SUCCESS_WITH_FAILURES": "ok",
    "BRANCH_TAKEN": "ok",
    "EXCLUDED": "excluded",
    "BRANCH_NOT_TAKEN": "excluded",
    "FAILED": "failed",
    "TIMEDOUT": "failed",
    "UPSTREAM_FAILED": "failed",
    "CONDITION_FAILED": "failed",
    "CANCELED": "canceled",
    "UPSTREAM_CANCELED": "canceled",
    "DISABLED": "disabled",
}


def expected(rule: RunIf, kinds: tuple[str, ...]) -> ResultState | str:
    """The documented table, written independently of the implementation (set logic over classes)."""
    classes = [_CLASS[k] for k in kinds]
    if all(c == "excluded" for c in classes):
        return R.EXCLUDED
    succeeded = [c in ("ok", "excluded") for c in classes]
    failed_or_canceled = [c in ("failed", "canceled") for c in classes]
    not_disabled = [c for c in classes if c != "disabled"]
    runs = {
        RunIf.ALL_SUCCESS: all(succeeded),
        RunIf.AT_LEAST_ONE_SUCCESS: any(succeeded),
        RunIf.NONE_FAILED: not any(failed_or_canceled) and any(succeeded),
        RunIf.ALL_DONE: True,
        RunIf.AT_LEAST_ONE_FAILED: any(failed_or_canceled),
        RunIf.ALL_FAILED: any(failed_or_canceled) and all(c in ("failed", "canceled") for c in not_disabled),
    }[rule]
    if runs:
        return "RUN"
    if rule in (RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED):
        return R.DISABLED if all(c == "disabled" for c in classes) else R.EXCLUDED
    if "canceled" in classes:
        return R.UPSTREAM_CANCELED
    if "failed" in classes:
        return R.UPSTREAM_FAILED
    return R.DISABLED


TABLE = [
    (rule, kinds)
    for n in (1, 2, 3)
    for kinds in itertools.combinations_with_replacement(sorted(KINDS), n)
    for rule in RunIf
]


def _node_and_results(rule: RunIf, kinds: tuple[str, ...]) -> tuple[Node, dict[str, DepResult]]:
    deps = []
    results = {}
    for i, kind in enumerate(kinds):
        result, outcome, wanted = KINDS[kind]
        deps.append(Dep(f"p{i}", wanted))
        results[f"p{i}"] = DepResult(result, outcome)
    return Node("t", tuple(deps), rule), results


@pytest.mark.parametrize(("rule", "kinds"), TABLE, ids=[f"{r.value}-{'+'.join(k)}" for r, k in TABLE])
def test_run_if_table(rule: RunIf, kinds: tuple[str, ...]) -> None:
    node, results = _node_and_results(rule, kinds)
    assert decide(node, results) == expected(rule, kinds)


@pytest.mark.parametrize(
    ("rule", "kinds", "want"),
    [
        # Hand-checked rows of the documented table, independent of the oracle above.
        (RunIf.ALL_SUCCESS, ("SUCCESS", "FAILED"), R.UPSTREAM_FAILED),
        (RunIf.ALL_SUCCESS, ("SUCCESS", "CANCELED"), R.UPSTREAM_CANCELED),
        (RunIf.ALL_SUCCESS, ("FAILED", "UPSTREAM_CANCELED"), R.UPSTREAM_CANCELED),
        (RunIf.ALL_SUCCESS, ("SUCCESS", "EXCLUDED"), RUN),
        (RunIf.ALL_SUCCESS, ("SUCCESS", "DISABLED"), R.DISABLED),
        (RunIf.AT_LEAST_ONE_SUCCESS, ("SUCCESS", "FAILED"), RUN),
        (RunIf.AT_LEAST_ONE_SUCCESS, ("FAILED", "FAILED"), R.UPSTREAM_FAILED),
        (RunIf.NONE_FAILED, ("SUCCESS", "EXCLUDED"), RUN),
        (RunIf.NONE_FAILED, ("SUCCESS", "FAILED"), R.UPSTREAM_FAILED),
        (RunIf.NONE_FAILED, ("SUCCESS", "DISABLED"), RUN),
        (RunIf.NONE_FAILED, ("DISABLED",), R.DISABLED),
        (RunIf.ALL_DONE, ("FAILED", "CANCELED"), RUN),
        (RunIf.ALL_DONE, ("EXCLUDED", "EXCLUDED"), R.EXCLUDED),
        (RunIf.AT_LEAST_ONE_FAILED, ("SUCCESS", "FAILED"), RUN),
        (RunIf.AT_LEAST_ONE_FAILED, ("SUCCESS", "CANCELED"), RUN),
        (RunIf.AT_LEAST_ONE_FAILED, ("SUCCESS", "SUCCESS"), R.EXCLUDED),
        (RunIf.AT_LEAST_ONE_FAILED, ("DISABLED",), R.DISABLED),
        (RunIf.ALL_FAILED, ("FAILED", "TIMEDOUT"), RUN),
        (RunIf.ALL_FAILED, ("FAILED", "SUCCESS"), R.EXCLUDED),
        (RunIf.ALL_FAILED, ("FAILED", "DISABLED"), RUN),
        (RunIf.ALL_FAILED, ("EXCLUDED", "EXCLUDED", "EXCLUDED"), R.EXCLUDED),
        (RunIf.ALL_SUCCESS, ("BRANCH_NOT_TAKEN",), R.EXCLUDED),
        (RunIf.ALL_SUCCESS, ("BRANCH_TAKEN",), RUN),
        (RunIf.ALL_SUCCESS, ("BRANCH_NOT_TAKEN", "SUCCESS"), RUN),
        (RunIf.ALL_SUCCESS, ("CONDITION_FAILED",), R.UPSTREAM_FAILED),
    ],
)
def test_run_if_documented_rows(rule: RunIf, kinds: tuple[str, ...], want: ResultState | str) -> None:
    node, results = _node_and_results(rule, kinds)
    assert decide(node, results) == want


def test_decide_waits_until_every_dependency_is_terminal() -> None:
    node = Node("t", (Dep("a"), Dep("b")), RunIf.ALL_DONE)
    assert decide(node, {"a": DepResult(R.FAILED)}) is None
    assert decide(node, {"a": DepResult(R.FAILED), "b": DepResult(R.SUCCESS)}) == RUN


def test_decide_root_runs_and_disabled_is_disabled() -> None:
    assert decide(Node("t"), {}) == RUN
    assert decide(Node("t", disabled=True), {}) == R.DISABLED
    node = Node("t", (Dep("a"),), disabled=True)
    assert decide(node, {}) is None
    assert decide(node, {"a": DepResult(R.SUCCESS)}) == R.DISABLED


_kind_lists = st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=6)


@given(_kind_lists)
def test_all_success_never_runs_after_a_failure(kinds: list[str]) -> None:
    node, results = _node_and_results(RunIf.ALL_SUCCESS, tuple(kinds))
    verdict = decide(node, results)
    if any(_CLASS[k] in ("failed", "canceled") for k in kinds):
        assert verdict != RUN
        assert verdict in (R.UPSTREAM_FAILED, R.UPSTREAM_CANCELED, R.EXCLUDED)


@given(
    st.lists(st.sampled_from(["EXCLUDED", "BRANCH_NOT_TAKEN"]), min_size=1, max_size=6),
    st.sampled_from(RunIf),
)
def test_excluded_only_is_excluded_whatever_run_if(kinds: list[str], rule: RunIf) -> None:
    node, results = _node_and_results(rule, tuple(kinds))
    assert decide(node, results) == R.EXCLUDED


@given(_kind_lists, st.sampled_from(RunIf))
def test_decide_is_order_independent(kinds: list[str], rule: RunIf) -> None:
    node, results = _node_and_results(rule, tuple(kinds))
    reordered = Node("t", tuple(reversed(node.deps)), rule)
    assert decide(node, results) == decide(reordered, results)


# ---------------------------------------------------------------------------------------------- progress


def test_progress_runs_a_diamond_in_order() -> None:
    g = Graph.build(
        [Node("a"), Node("b", (Dep("a"),)), Node("c", (Dep("a"),)), Node("d", (Dep("b"), Dep("c")))]
    )
    p = Progress(g)
    assert p.start().run == ("a",)
    assert p.complete("a", DepResult(R.SUCCESS)).run == ("b", "c")
    assert p.complete("b", DepResult(R.SUCCESS)).run == ()
    assert p.complete("c", DepResult(R.SUCCESS)).run == ("d",)


def test_progress_cascades_upstream_failed_and_runs_failure_handlers() -> None:
    g = Graph.build(
        [
            Node("a"),
            Node("b", (Dep("a"),)),
            Node("c", (Dep("b"),)),
            Node("on_fail", (Dep("c"),), RunIf.AT_LEAST_ONE_FAILED),
            Node("cleanup", (Dep("c"),), RunIf.ALL_DONE),
        ]
    )
    p = Progress(g)
    p.start()
    step = p.complete("a", DepResult(R.FAILED))
    assert step.skipped == (("b", R.UPSTREAM_FAILED), ("c", R.UPSTREAM_FAILED))
    assert step.run == ("on_fail", "cleanup")


def test_progress_condition_branches() -> None:
    g = Graph.build(
        [
            Node("cond"),
            Node("yes", (Dep("cond", "true"),)),
            Node("no", (Dep("cond", "false"),)),
            Node("after_no", (Dep("no"),)),
            Node("join", (Dep("yes"), Dep("after_no")), RunIf.NONE_FAILED),
        ]
    )
    p = Progress(g)
    p.start()
    step = p.complete("cond", DepResult(R.SUCCESS, "true"))
    assert step.run == ("yes",)
    assert step.skipped == (("no", R.EXCLUDED), ("after_no", R.EXCLUDED))
    assert p.complete("yes", DepResult(R.SUCCESS)).run == ("join",)


def test_progress_disabled_task_cascades_disabled() -> None:
    g = Graph.build([Node("a", disabled=True), Node("b", (Dep("a"),)), Node("c")])
    step = Progress(g).start()
    assert step.run == ("c",)
    assert step.skipped == (("a", R.DISABLED), ("b", R.DISABLED))


def test_progress_with_prior_results_starts_only_what_is_left() -> None:
    g = Graph.build([Node("a"), Node("b", (Dep("a"),)), Node("c", (Dep("b"),))])
    p = Progress(g, prior={"a": DepResult(R.SUCCESS)})
    assert p.start().run == ("b",)
    assert p.complete("b", DepResult(R.SUCCESS)).run == ("c",)


def test_progress_refuses_a_double_completion() -> None:
    p = Progress(Graph.build([Node("a")]))
    p.start()
    p.complete("a", DepResult(R.SUCCESS))
    with pytest.raises(InternalError, match="completed twice"):
        p.complete("a", DepResult(R.SUCCESS))


def test_progress_fan_in_of_1000_is_released_once() -> None:
    n = 1000
    nodes = [Node("root"), *(Node(f"w{i}", (Dep("root"),)) for i in range(n))]
    nodes.append(Node("join", tuple(Dep(f"w{i}") for i in range(n))))
    p = Progress(Graph.build(nodes))
    p.start()
    assert len(p.complete("root", DepResult(R.SUCCESS)).run) == n
    released = [p.complete(f"w{i}", DepResult(R.SUCCESS)).run for i in range(n)]
    assert released[:-1] == [()] * (n - 1)
    assert released[-1] == ("join",)


@st.composite
def _random_dag(draw: st.DrawFn) -> tuple[Graph, int]:
    n = draw(st.integers(1, 12))
    nodes = []
    for i in range(n):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        rule = draw(st.sampled_from(RunIf))
        disabled = draw(st.integers(0, 5)) == 0
        nodes.append(Node(f"t{i}", tuple(Dep(f"t{p}") for p in sorted(parents)), rule, disabled))
    return Graph.build(nodes), draw(st.integers(0, 2**32 - 1))


@settings(max_examples=200)
@given(_random_dag())
def test_progress_simulation_decides_every_task_once(case: tuple[Graph, int]) -> None:
    graph, seed = case
    rng = random.Random(seed)
    p = Progress(graph)
    decided: dict[str, ResultState] = {}
    running: list[str] = []

    def absorb(run: tuple[str, ...], skipped: tuple[tuple[str, ResultState], ...]) -> None:
        for key, state in skipped:
            assert key not in decided
            decided[key] = state
        for key in run:
            assert key not in decided
            assert all(d.task_key in decided for d in graph.nodes[key].deps)
            running.append(key)

    step = p.start()
    absorb(step.run, step.skipped)
    while running:
        key = running.pop(rng.randrange(len(running)))
        state = rng.choice([R.SUCCESS, R.SUCCESS, R.FAILED, R.TIMEDOUT, R.CANCELED])
        decided[key] = state
        step = p.complete(key, DepResult(state))
        absorb(step.run, step.skipped)
    assert decided.keys() == graph.nodes.keys()
    assert isinstance(job_result(graph, decided), ResultState)


# ---------------------------------------------------------------------------------------------- job result

_LINE = Graph.build([Node("a"), Node("b", (Dep("a"),)), Node("fix", (Dep("a"),), RunIf.AT_LEAST_ONE_FAILED)])


def test_job_result_success() -> None:
    assert job_result(_LINE, {"a": R.SUCCESS, "b": R.SUCCESS, "fix": R.EXCLUDED}) == R.SUCCESS


def test_job_result_failed_when_a_leaf_failed() -> None:
    assert job_result(_LINE, {"a": R.FAILED, "b": R.UPSTREAM_FAILED, "fix": R.SUCCESS}) == R.FAILED


def test_job_result_success_with_failures_when_leaves_succeed() -> None:
    g = Graph.build([Node("a"), Node("fix", (Dep("a"),), RunIf.AT_LEAST_ONE_FAILED)])
    assert job_result(g, {"a": R.FAILED, "fix": R.SUCCESS}) == R.SUCCESS_WITH_FAILURES


def test_job_result_disabled_leaf_counts_as_success() -> None:
    g = Graph.build([Node("a"), Node("b", disabled=True)])
    assert job_result(g, {"a": R.SUCCESS, "b": R.DISABLED}) == R.SUCCESS


@pytest.mark.parametrize("leaf", [R.CANCELED, R.UPSTREAM_CANCELED, R.TIMEDOUT])
def test_job_result_canceled_or_timed_out_leaf_fails_the_job(leaf: ResultState) -> None:
    g = Graph.build([Node("a")])
    assert job_result(g, {"a": leaf}) == R.FAILED


def test_job_result_run_level_timeout_and_cancel_win() -> None:
    done = {"a": R.SUCCESS, "b": R.SUCCESS, "fix": R.EXCLUDED}
    assert job_result(_LINE, done, canceled=True) == R.CANCELED
    assert job_result(_LINE, done, timed_out=True, canceled=True) == R.TIMEDOUT
    assert job_result(_LINE, {}, canceled=True) == R.CANCELED


def test_job_result_refuses_unfinished_tasks() -> None:
    with pytest.raises(InternalError, match="before tasks finished"):
        job_result(_LINE, {"a": R.SUCCESS})


# ---------------------------------------------------------------------------------------------- only

_ONLY = Graph.build(
    [Node("a"), Node("b", (Dep("a"),)), Node("c", (Dep("b"),)), Node("d", (Dep("c"),)), Node("x")]
)


@pytest.mark.parametrize(
    ("only", "want"),
    [
        (["b"], {"b"}),
        (["+c"], {"a", "b", "c"}),
        (["b+"], {"b", "c", "d"}),
        (["+b+"], {"a", "b", "c", "d"}),
        (["x", "c+"], {"x", "c", "d"}),
        ([" b "], {"b"}),
    ],
)
def test_select_only(only: list[str], want: set[str]) -> None:
    assert select_only(_ONLY, only) == want


def test_select_only_unknown_key_names_it() -> None:
    with pytest.raises(InvalidRequestError, match=r"task 'cc'.*did you mean 'c'"):
        select_only(_ONLY, ["+cc"])
