"""The failure handler: in production this would page someone; here it says what happened."""

import argparse
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--run-id", required=True)
args = parser.parse_args()
print(
    f"ALERT: ingest failed in run {args.run_id}; see `sluice runs logs {args.run_id} --task ingest`",
    file=sys.stderr,
)
