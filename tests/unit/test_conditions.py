"""condition_task comparisons (sluice.conditions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.conditions import ConditionError, evaluate
from sluice.states import ConditionOp as Op


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        (Op.EQUAL_TO, "12", "12", True),
        (Op.EQUAL_TO, "12.0", "12", False),  # strings, as Databricks compares them
        (Op.NOT_EQUAL, "12.0", "12", True),
        (Op.EQUAL_TO, "true", "true", True),
        (Op.EQUAL_TO, "", "", True),
        (Op.GREATER_THAN_OR_EQUAL, "12.0", "12", True),  # numbers
        (Op.GREATER_THAN, "12.0", "12", False),
        (Op.GREATER_THAN, "10", "9", True),  # not string order
        (Op.LESS_THAN, "9", "10", True),
        (Op.LESS_THAN_OR_EQUAL, "-1.5", "-1.5", True),
        (Op.LESS_THAN, " 3 ", "4", True),
        (Op.GREATER_THAN, "1e3", "999", True),
    ],
)
def test_table(op: Op, left: str, right: str, expected: bool) -> None:
    assert evaluate(op, left, right) is expected


@pytest.mark.parametrize("bad", ["abc", "", "nan", "inf", "1,5"])
@pytest.mark.parametrize(
    "op", [Op.GREATER_THAN, Op.GREATER_THAN_OR_EQUAL, Op.LESS_THAN, Op.LESS_THAN_OR_EQUAL]
)
def test_ordering_needs_numbers(op: Op, bad: str) -> None:
    with pytest.raises(ConditionError, match=f"{op.value} compares numbers, but the left operand"):
        evaluate(op, bad, "1")


@given(st.decimals(allow_nan=False, allow_infinity=False), st.decimals(allow_nan=False, allow_infinity=False))
def test_orderings_agree(a: object, b: object) -> None:
    left, right = str(a), str(b)
    gt = evaluate(Op.GREATER_THAN, left, right)
    lt = evaluate(Op.LESS_THAN, left, right)
    ge = evaluate(Op.GREATER_THAN_OR_EQUAL, left, right)
    le = evaluate(Op.LESS_THAN_OR_EQUAL, left, right)
    assert not (gt and lt)
    assert ge == (not lt)
    assert le == (not gt)
