"""Aggregate purchase revenue by brand and write it next to the run's other outputs."""

import argparse
import csv
import json
import os
from collections import defaultdict
from pathlib import Path

from sluice.runtime import dbutils

parser = argparse.ArgumentParser()
parser.add_argument("--source", required=True)
parser.add_argument("--expected-purchases", type=int, required=True)
parser.add_argument("--env", required=True)
args = parser.parse_args()

revenue: dict[str, float] = defaultdict(float)
purchases = 0
with open(args.source, newline="") as f:
    for row in csv.DictReader(f):
        if row["event_type"] == "purchase":
            purchases += 1
            revenue[row["brand"] or "(no brand)"] += float(row["price"])

if purchases != args.expected_purchases:
    raise ValueError(f"ingest counted {args.expected_purchases} purchases but the source has {purchases}")

top = sorted(revenue.items(), key=lambda kv: -kv[1])[:5]
for brand, total in top:
    print(f"{brand:>20}  {total:10.2f}")

out_dir = Path(os.environ.get("SLUICE_HOME", ".")) / "quickstart" / args.env
out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "revenue_by_brand.json").write_text(json.dumps(dict(revenue), indent=2, sort_keys=True))
print(f"wrote {out_dir / 'revenue_by_brand.json'}")
dbutils.jobs.taskValues.set("total_revenue", round(sum(revenue.values()), 2))
print("event types seen by ingest:", dbutils.jobs.taskValues.get("ingest", "event_types"))
