"""``sluice example-data ...``: write synthetic example data sets (see docs/guide/example-data.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.common import EXIT_INVALID, fail

app = typer.Typer(help="Write synthetic example data sets for demos and benchmarks.", no_args_is_help=True)


@app.command()
def ecommerce(
    out: Annotated[Path, typer.Option("--out", help="Directory to write 2019-<Month>.csv into (created).")],
    month: Annotated[str, typer.Option("--month", help="Oct or Nov: the public file to imitate.")] = "Oct",
    rows: Annotated[int, typer.Option("--rows", help="Number of events (data rows) to write.")] = 1_000_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed and arguments, same bytes.")] = 0,
) -> None:
    """Write a clickstream CSV like the public 2019-Oct.csv / 2019-Nov.csv ecommerce files.

    Same header, text format and statistics as the REES46 "eCommerce behavior data from multi category
    store" data set (https://rees46.com and
    https://www.kaggle.com/datasets/mkechinov/ecommerce-behavior-data-from-multi-category-store).
    Writes OUT/2019-<Month>.csv, streaming; the same seed and arguments give the same bytes.
    """
    from sluice.examples.ecommerce import write_csv

    started = time.perf_counter()
    try:
        path = write_csv(out, month, rows, seed)
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID)
    except OSError as exc:
        fail(f"cannot write into {out}: {exc.strerror or exc}; choose a writable --out directory")
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    typer.echo(f"wrote {path} ({rows:,} rows, {size / 1e6:,.1f} MB) in {elapsed:.2f} s")
