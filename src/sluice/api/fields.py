"""Types of request fields shared by the handlers: ids and times are 64-bit, as in the Jobs API.

A value out of range is a 400 ``INVALID_PARAMETER_VALUE`` naming the field (:mod:`sluice.api.errors`),
never a value handed to the store, whose databases would refuse it with errors of their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import Field

INT64_MAX = 2**63 - 1

#: A job, run, task run or repair id in a request body.
Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
#: The same in a query string.
IdQuery = Annotated[int, Query(ge=1, le=INT64_MAX)]
#: An optional id in a query string (a filter).
OptionalIdQuery = Annotated[int | None, Query(ge=1, le=INT64_MAX)]
#: Epoch milliseconds or a row offset in a query string.
CountQuery = Annotated[int | None, Query(ge=0, le=INT64_MAX)]
