"""The task graph of a job run: cycles, run_if decisions, readiness and the job result.

Pure functions over plain values. States are the Jobs API enums of :mod:`sluice.states`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from sluice.errors import InternalError, InvalidJobError, InvalidRequestError, Problem
from sluice.states import CANCELED_RESULTS, SUCCESS_RESULTS, ResultState, RunIf

_WHITE, _GREY, _BLACK = 0, 1, 2


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One dependency cycle as task keys with the first repeated at the end (``["a", "b", "a"]``), or None.

    ``deps`` maps a task key to the keys it depends on. Keys named only as dependencies have no edges.
    Deterministic: nodes are visited in mapping order, dependencies in their given order. Iterative, O(V+E).
    """
    edges = {k: list(v) for k, v in deps.items()}
    color: dict[str, int] = {}
    for root in edges:
        if color.get(root, _WHITE) != _WHITE:
            continue
        path: list[str] = [root]
        on_path_iters = [iter(edges[root])]
        color[root] = _GREY
        while path:
            nxt = next(on_path_iters[-1], None)
            if nxt is None:
                color[path.pop()] = _BLACK
                on_path_iters.pop()
                continue
            state = color.get(nxt, _WHITE)
            if state == _GREY:
                return [*path[path.index(nxt) :], nxt]
            if state == _WHITE:
                color[nxt] = _GREY
                path.append(nxt)
                on_path_iters.append(iter(edges.get(nxt, ())))
    return None


# --------------------------------------------------------------------------------------------------------
# The graph
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dep:
    """One ``depends_on`` entry; ``outcome`` ("true"/"false") only for condition-task parents."""

    task_key: str
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    deps: tuple[Dep, ...] = ()
    run_if: RunIf = RunIf.ALL_SUCCESS
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Graph:
    """A validated, acyclic task graph. Build it with :meth:`Graph.build`."""

    nodes: Mapping[str, Node]
    #: key -> keys that depend on it (each once, in declaration order).
    downstream: Mapping[str, tuple[str, ...]]
    #: Keys with no downstream task: they decide the job result.
    leaves: tuple[str, ...]
    #: A topological order (dependencies first; ties in declaration order).
    order: tuple[str, ...]

    @classmethod
    def build(cls, nodes: Iterable[Node]) -> Graph:
        """Validate (unique keys, known dependencies, no cycle) and index ``nodes``. O(V+E).

        Raises InvalidJobError with one Problem per duplicate key, unknown dependency or the cycle found.
        """
        by_key: dict[str, Node] = {}
        problems: list[Problem] = []
        for node in nodes:
            if node.key in by_key:
                problems.append(Problem(f"duplicate task_key '{node.key}'", task=node.key))
            by_key[node.key] = node
        down: dict[str, list[str]] = {k: [] for k in by_key}
        indegree = dict.fromkeys(by_key, 0)
        for node in by_key.values():
            for parent in dict.fromkeys(d.task_key for d in node.deps):
                if parent not in by_key:
                    problems.append(_unknown_dep(node.key, parent, by_key))
                    continue
                down[parent].append(node.key)
                indegree[node.key] += 1
        if problems:
            raise InvalidJobError(problems)
        order = _kahn(by_key, down, indegree)
        if len(order) < len(by_key):
            cycle = find_cycle({k: [d.task_key for d in n.deps] for k, n in by_key.items()}) or []
            raise InvalidJobError(
                [Problem(f"depends_on has a cycle: {' -> '.join(cycle)}", field="depends_on")]
            )
        downstream = {k: tuple(v) for k, v in down.items()}
        leaves = tuple(k for k, v in downstream.items() if not v)
        return cls(MappingProxyType(by_key), MappingProxyType(downstream), leaves, tuple(order))


def _unknown_dep(key: str, parent: str, known: Mapping[str, Node]) -> Problem:
    import difflib  # error path only

    close = difflib.get_close_matches(parent, list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return Problem(f"depends on unknown task '{parent}'{hint}", task=key, field="depends_on")


def _kahn(nodes: Mapping[str, Node], down: Mapping[str, list[str]], indegree: dict[str, int]) -> list[str]:
    remaining = dict(indegree)
    queue = deque(k for k in nodes if remaining[k] == 0)
    order: list[str] = []
    while queue:
        key = queue.popleft()
        order.append(key)
        for child in down[key]:
            remaining[child] -= 1
            if remaining[child] == 0:
                queue.append(child)
    return order


# --------------------------------------------------------------------------------------------------------
# run_if
# --------------------------------------------------------------------------------------------------------

#: What ``decide`` returns when the task should start.
RUN: Literal["RUN"] = "RUN"
Decision = ResultState | Literal["RUN"]

_LEAF_FAILED = frozenset(
    {
        ResultState.FAILED,
        ResultState.TIMEDOUT,
        ResultState.UPSTREAM_FAILED,
        ResultState.CANCELED,
        ResultState.UPSTREAM_CANCELED,
        ResultState.MAXIMUM_CONCURRENT_RUNS_REACHED,
    }
)


@dataclass(frozen=True, slots=True)
class DepResult:
    """A finished dependency: its result and, for a condition task, its outcome ("true"/"false")."""

    result: ResultState
    outcome: str | None = None


class _Counts:
    """How the dependencies of one node ended, by class."""

    __slots__ = ("canceled", "disabled", "excluded", "failed", "success")

    def __init__(self) -> None:
        self.excluded = self.success = self.failed = self.canceled = self.disabled = 0

    def add(self, dep: Dep, res: DepResult) -> None:
        state = res.result
        if state is ResultState.EXCLUDED:
            self.excluded += 1
        elif state in SUCCESS_RESULTS:
            # A condition branch not taken: the parent ran, but not with the outcome this edge wants.
            if dep.outcome is not None and res.outcome != dep.outcome:
                self.excluded += 1
            else:
                self.success += 1
        elif state in CANCELED_RESULTS:
            self.canceled += 1
        elif state is ResultState.DISABLED:
            self.disabled += 1
        else:  # FAILED, TIMEDOUT, UPSTREAM_FAILED (anything unexpected counts as a failure)
            self.failed += 1


def decide(node: Node, results: Mapping[str, DepResult]) -> Decision | None:
    """Whether ``node`` runs, given its dependencies' results: RUN, the state it ends in, or None (wait).

    Databricks' rules: run_if is evaluated once every dependency is terminal; EXCLUDED counts as success;
    a task whose dependencies are all EXCLUDED is EXCLUDED whatever its run_if; a dependency on a condition
    task whose outcome is not the edge's ``outcome`` counts as EXCLUDED.
    """
    counts = _Counts()
    for dep in node.deps:
        res = results.get(dep.task_key)
        if res is None:
            return None
        counts.add(dep, res)
    if node.disabled:
        return ResultState.DISABLED
    if not node.deps:
        return RUN
    return _apply_run_if(node.run_if, counts, len(node.deps))


def _apply_run_if(rule: RunIf, c: _Counts, n: int) -> Decision:
    if c.excluded == n:
        return ResultState.EXCLUDED
    ok = c.excluded + c.success
    bad = c.failed + c.canceled
    if rule is RunIf.ALL_DONE:
        return RUN
    if rule is RunIf.AT_LEAST_ONE_FAILED or rule is RunIf.ALL_FAILED:
        met = bad >= 1 and (rule is RunIf.AT_LEAST_ONE_FAILED or bad == n - c.disabled)
        if met:
            return RUN
        return ResultState.DISABLED if c.disabled == n else ResultState.EXCLUDED
    if rule is RunIf.ALL_SUCCESS:
        met = ok == n
    elif rule is RunIf.AT_LEAST_ONE_SUCCESS:
        met = ok >= 1
    else:  # NONE_FAILED
        met = bad == 0 and ok >= 1
    if met:
        return RUN
    if c.canceled:
        return ResultState.UPSTREAM_CANCELED
    return ResultState.UPSTREAM_FAILED if c.failed else ResultState.DISABLED


# --------------------------------------------------------------------------------------------------------
# Incremental progress for the engine
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """What to do after a change: tasks to start now, and tasks decided without running (in order)."""

    run: tuple[str, ...] = ()
    skipped: tuple[tuple[str, ResultState], ...] = ()


class Progress:
    """Tracks which tasks have all dependencies terminal, in O(out-degree) per completed task.

    The engine calls :meth:`start` once, then :meth:`complete` for every task that reaches a terminal
    result (each task once). Tasks decided without running (EXCLUDED, UPSTREAM_FAILED, DISABLED ...) are
    completed internally and cascade; the returned :class:`Step` lists them so the engine can record them.
    ``prior`` holds results kept from an earlier attempt (a repair run): those tasks are not started again.
    """

    __slots__ = ("_graph", "_pending", "_results")

    def __init__(self, graph: Graph, prior: Mapping[str, DepResult] | None = None) -> None:
        self._graph = graph
        self._results: dict[str, DepResult] = dict(prior or {})
        done = self._results
        self._pending: dict[str, int] = {}
        for key, node in graph.nodes.items():
            parents = dict.fromkeys(d.task_key for d in node.deps)
            self._pending[key] = sum(1 for p in parents if p not in done)

    @property
    def results(self) -> Mapping[str, DepResult]:
        return MappingProxyType(self._results)

    def start(self) -> Step:
        """Tasks ready at the beginning (roots, or after ``prior`` results), skip decisions cascaded."""
        ready = [k for k in self._graph.order if k not in self._results and self._pending[k] == 0]
        return self._settle(ready)

    def complete(self, key: str, result: DepResult) -> Step:
        """Record ``key``'s terminal result; return the downstream tasks that can now start or be skipped."""
        if key in self._results:
            raise InternalError(f"task '{key}' completed twice in one run")
        self._results[key] = result
        return self._settle(self._release(key))

    def _release(self, key: str) -> list[str]:
        ready: list[str] = []
        pending = self._pending
        for child in self._graph.downstream[key]:
            pending[child] -= 1
            if pending[child] == 0 and child not in self._results:
                ready.append(child)
        return ready

    def _settle(self, ready: list[str]) -> Step:
        run: list[str] = []
        skipped: list[tuple[str, ResultState]] = []
        queue = deque(ready)
        nodes = self._graph.nodes
        while queue:
            key = queue.popleft()
            verdict = decide(nodes[key], self._results)
            if verdict is None:  # cannot happen: every dependency is terminal
                raise InternalError(f"task '{key}' was released before its dependencies finished")
            if verdict == RUN:
                run.append(key)
                continue
            state = ResultState(verdict)
            skipped.append((key, state))
            self._results[key] = DepResult(state)
            queue.extend(self._release(key))
        return Step(tuple(run), tuple(skipped))


# --------------------------------------------------------------------------------------------------------
# Job result and run-now ``only``
# --------------------------------------------------------------------------------------------------------


def job_result(
    graph: Graph, results: Mapping[str, ResultState], *, canceled: bool = False, timed_out: bool = False
) -> ResultState:
    """The job run's result_state, decided by the leaf tasks (Databricks' rule).

    TIMEDOUT / CANCELED when the whole run timed out or was canceled; FAILED if any leaf failed or was
    canceled; SUCCESS_WITH_FAILURES if every leaf succeeded (or was excluded/disabled) but some task failed;
    SUCCESS otherwise.
    """
    if timed_out:
        return ResultState.TIMEDOUT
    if canceled:
        return ResultState.CANCELED
    missing = [k for k in graph.nodes if k not in results]
    if missing:
        raise InternalError(f"job result asked for before tasks finished: {', '.join(missing[:5])}")
    if any(results[leaf] in _LEAF_FAILED for leaf in graph.leaves):
        return ResultState.FAILED
    if any(state in _LEAF_FAILED for state in results.values()):
        return ResultState.SUCCESS_WITH_FAILURES
    return ResultState.SUCCESS


def _closure(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    into: set[str] = set()
    stack = [start]
    while stack:
        key = stack.pop()
        if key in into:
            continue
        into.add(key)
        stack.extend(edges.get(key, ()))
    return into


def select_only(graph: Graph, only: Sequence[str]) -> set[str]:
    """The task keys selected by run-now ``only``: ``key``, ``+key`` (with everything upstream),
    ``key+`` (with everything downstream) or ``+key+`` (both).

    Raises InvalidRequestError naming an unknown key (with the closest known one).
    """
    upstream = {k: [d.task_key for d in n.deps] for k, n in graph.nodes.items()}
    selected: set[str] = set()
    for raw in only:
        spec = raw.strip()
        up, down = spec.startswith("+"), spec.endswith("+") and len(spec) > 1
        key = spec[1 if up else 0 : len(spec) - 1 if down else len(spec)]
        if key not in graph.nodes:
            import difflib  # error path only

            close = difflib.get_close_matches(key, list(graph.nodes), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InvalidRequestError(f"'only' names task '{key}', which is not in this job{hint}")
        selected.add(key)
        if up:
            selected |= _closure(key, upstream)
        if down:
            selected |= _closure(key, graph.downstream)
    return selected
