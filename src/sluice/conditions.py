"""``condition_task``: compare two operands, Databricks' way. Pure.

``EQUAL_TO`` and ``NOT_EQUAL`` compare the operands as strings ("12.0" is not "12"); the four ordering
operators compare them as numbers ("12.0" >= "12"), and an operand that is not a number fails the task.
Operands arrive with their references already resolved (a boolean task value reads "true"/"false").
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sluice.errors import SluiceError
from sluice.states import ConditionOp


class ConditionError(SluiceError):
    """An operand that the operator cannot compare."""


def _number(value: str, side: str, op: ConditionOp) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ConditionError(
            f"{op.value} compares numbers, but the {side} operand {value!r} is not a number; "
            "use EQUAL_TO or NOT_EQUAL to compare text"
        )
    return number


def evaluate(op: ConditionOp, left: str, right: str) -> bool:
    """The condition's outcome."""
    if op is ConditionOp.EQUAL_TO:
        return left == right
    if op is ConditionOp.NOT_EQUAL:
        return left != right
    a, b = _number(left, "left", op), _number(right, "right", op)
    if op is ConditionOp.GREATER_THAN:
        return a > b
    if op is ConditionOp.GREATER_THAN_OR_EQUAL:
        return a >= b
    if op is ConditionOp.LESS_THAN:
        return a < b
    return a <= b
