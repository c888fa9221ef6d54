"""Read the month's events, check them, and hand the counts to downstream tasks as task values."""

import argparse
import csv
from collections import Counter

from sluice.runtime import dbutils

parser = argparse.ArgumentParser()
parser.add_argument("--source", required=True)
parser.add_argument("--flaky", default="false")
parser.add_argument("--execution-count", type=int, default=1)
args = parser.parse_args()

if args.flaky == "true" and args.execution_count == 1:
    # A source that is briefly unavailable: the task's max_retries recovers from it.
    raise ConnectionError("simulated transient failure reading the source; the retry will succeed")

with open(args.source, newline="") as f:
    rows = list(csv.DictReader(f))
if not rows:
    raise ValueError(f"{args.source} holds no events")

events = Counter(row["event_type"] for row in rows)
bad_prices = sum(1 for row in rows if float(row["price"]) < 0)
print(f"read {len(rows)} events from {args.source}: {dict(events)}; {bad_prices} negative prices")

dbutils.jobs.taskValues.set("row_count", len(rows))
dbutils.jobs.taskValues.set("purchases", events["purchase"])
dbutils.jobs.taskValues.set("event_types", dict(events))
