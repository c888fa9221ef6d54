"""The ecommerce example's gold numbers, computed independently of Spark: plain Python over the CSV files.

Same rules as the example's notebooks (examples/ecommerce/notebooks): silver drops rows whose price is
missing or not positive and exact duplicates (over the nine source columns, as typed values), and dates are
the UTC calendar day of ``event_time``. Gold: purchases, buyers and revenue per day; users per funnel step;
the ten brands with the most purchase revenue.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = tuple[str, str, int, int, str | None, str | None, float, int, str | None]


def _typed(record: dict[str, str]) -> Row | None:
    price_text = record["price"]
    if not price_text or float(price_text) <= 0:
        return None
    return (
        record["event_time"],
        record["event_type"],
        int(record["product_id"]),
        int(record["category_id"]),
        record["category_code"] or None,
        record["brand"] or None,
        float(price_text),
        int(record["user_id"]),
        record["user_session"] or None,
    )


def silver_rows(paths: Iterable[Path]) -> set[Row]:
    rows: set[Row] = set()
    for path in paths:
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                typed = _typed(record)
                if typed is not None:
                    rows.add(typed)
    return rows


@dataclass(frozen=True)
class Gold:
    #: event_date -> (purchases, buyers, revenue)
    daily: dict[str, tuple[int, int, float]]
    #: step -> users
    funnel: dict[str, int]
    #: [(brand, revenue, purchases)] best first
    top_brands: list[tuple[str, float, int]]
    bronze_rows: int
    silver_rows: int

    def summary(self) -> dict[str, Any]:
        return {
            "revenue": round(sum(r for _, _, r in self.daily.values()), 2),
            "buyers": self.funnel.get("purchase", 0),
            "days": len(self.daily),
        }


def gold(paths: list[Path]) -> Gold:
    rows = silver_rows(paths)
    bronze = 0
    for path in paths:
        with path.open() as handle:
            bronze += sum(1 for _ in handle) - 1
    count: dict[str, int] = defaultdict(int)
    buyers: dict[str, set[int]] = defaultdict(set)
    revenue: dict[str, float] = defaultdict(float)
    users: dict[str, set[int]] = defaultdict(set)
    brand_revenue: dict[str, float] = defaultdict(float)
    brand_count: dict[str, int] = defaultdict(int)
    for event_time, event_type, _, _, _, brand, price, user_id, _ in rows:
        users[event_type].add(user_id)
        if event_type != "purchase":
            continue
        day = event_time[:10]
        count[day] += 1
        buyers[day].add(user_id)
        revenue[day] += price
        if brand is not None:
            brand_revenue[brand] += price
            brand_count[brand] += 1
    daily = {day: (count[day], len(buyers[day]), round(revenue[day], 2)) for day in sorted(count)}
    ranked = sorted(brand_revenue, key=lambda b: (-round(brand_revenue[b], 2), b))[:10]
    return Gold(
        daily=daily,
        funnel={step: len(users[step]) for step in ("view", "cart", "purchase")},
        top_brands=[(b, round(brand_revenue[b], 2), brand_count[b]) for b in ranked],
        bronze_rows=bronze,
        silver_rows=len(rows),
    )
