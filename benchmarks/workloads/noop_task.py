"""One benchmark task: a no-op that leaves the peers' mark line (index, start, end, pid) in $PEER_MARKS.

The line format is that of ../shared/bench/peers/workloads/peer_common.py, so the peers' harness can check
that every task ran exactly once and split the wall time the same way for Sluice as for the others.
"""

import os
import sys
import time

start = time.time()
index = int(sys.argv[1])
marks = os.environ.get("PEER_MARKS")
if marks:
    with open(marks, "a") as f:
        f.write(f"{index} {start:.6f} {time.time():.6f} {os.getpid()}\n")
