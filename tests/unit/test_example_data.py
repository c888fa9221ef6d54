"""The ecommerce example-data generator: format, statistics, determinism and errors.

Reference statistics: /work/shared/reference/ecommerce-dataset.md (REES46 "eCommerce behavior data from multi
category store", https://rees46.com and
https://www.kaggle.com/datasets/mkechinov/ecommerce-behavior-data-from-multi-category-store).
"""

from __future__ import annotations

import csv
import os
import re
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sluice.cli.example_cmd import app as example_app
from sluice.examples import ecommerce
from sluice.examples.ecommerce import HEADER, MONTHS, generate, write_csv

ROWS = 200_000
ROOT = Path(__file__).resolve().parents[2]
#: The first 4,999 rows of the real 2019-Oct.csv (see its SOURCES.md for the citation).
REAL_SAMPLES = (
    ROOT / "tests" / "data" / "ecommerce" / "2019-Oct-head-4999.csv",
    ROOT.parent / "shared" / "data" / "ecommerce" / "2019-Oct-head-4999.csv",  # shared/ beside the checkout
)

PATTERNS = {
    "event_time": r"2019-(?P<month>1[01])-(0[1-9]|[12]\d|3[01]) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d UTC",
    "event_type": r"view|cart|purchase",
    "product_id": r"[1-9]\d{6,7}",
    "category_id": r"2[01]\d{17}",
    "category_code": r"|[a-z_]+(\.[a-z_]+){1,3}",
    "brand": r"|[a-z0-9][a-z0-9&.'+-]*( [a-z0-9&.'+-]+)*",
    "price": r"(0|[1-9]\d{0,3})\.\d\d",
    "user_id": r"[1-9]\d{8}",
    "user_session": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
}
COLUMNS = list(PATTERNS)
#: One data line: every column's pattern, comma-separated, nothing quoted.
LINE = re.compile(",".join(f"(?:{p})" for p in PATTERNS.values()))
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    path = write_csv(tmp_path_factory.mktemp("oct"), "Oct", ROWS, seed=7)
    return path, _read(path)


@pytest.fixture(scope="module")
def real_rows() -> list[dict[str, str]]:
    for path in REAL_SAMPLES:
        if path.exists():
            return _read(path)
    missing = "the real REES46 sample 2019-Oct-head-4999.csv is not present: these checks compare against it"
    if os.environ.get("CI") == "true":
        pytest.fail(missing)  # CI always has shared/: a missing sample is a broken set-up, not a skip
    pytest.skip(missing)


def test_file_name_header_and_text_format(october: tuple[Path, list[dict[str, str]]]) -> None:
    path, rows = october
    assert path.name == "2019-Oct.csv"
    text = path.read_text(encoding="ascii")
    assert ",".join(COLUMNS) + "\n" == HEADER
    assert text.startswith(HEADER)
    assert text.endswith("\n")
    assert "\r" not in text
    assert '"' not in text
    lines = text.splitlines()[1:]
    assert len(lines) == len(rows) == ROWS
    for line in lines:
        assert LINE.fullmatch(line), line
    assert all(list(row) == COLUMNS for row in rows)


def test_sessions_are_mostly_uuid4_like_the_real_ones(october: tuple[Path, list[dict[str, str]]]) -> None:
    sessions = {r["user_session"] for r in october[1]}
    other = sum(not UUID4.fullmatch(s) for s in sessions) / len(sessions)
    assert 0.01 <= other <= 0.03  # 2% of the real sample's sessions are not UUID4


def test_patterns_accept_the_real_rows(real_rows: list[dict[str, str]]) -> None:
    """The format checks above are the real files' format: every real row passes them."""
    compiled = {c: re.compile(p) for c, p in PATTERNS.items()}
    for row in real_rows:
        assert list(row) == COLUMNS
        for column, pattern in compiled.items():
            assert pattern.fullmatch(row[column]), (column, row)
        assert LINE.fullmatch(",".join(row.values()))


def test_times_increase_over_the_whole_month(october: tuple[Path, list[dict[str, str]]]) -> None:
    times = [r["event_time"] for r in october[1]]
    assert times == sorted(times)
    assert all(t.startswith("2019-10-") for t in times)
    assert times[0] < "2019-10-01 01:00:00 UTC"
    assert times[-1] > "2019-10-31 23:00:00 UTC"
    days = {t[:10] for t in times}
    assert len(days) == 31


def test_event_type_shares_match_the_month(october: tuple[Path, list[dict[str, str]]]) -> None:
    rows = october[1]
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["event_type"]] += 1
    oct_ = MONTHS["Oct"]
    assert set(counts) == {"view", "cart", "purchase"}  # no remove_from_cart in the Oct/Nov files
    assert counts["cart"] / ROWS == pytest.approx(oct_.carts / oct_.rows, abs=0.001)
    assert counts["purchase"] / ROWS == pytest.approx(oct_.purchases / oct_.rows, abs=0.001)


def test_empty_rates_and_cardinalities(october: tuple[Path, list[dict[str, str]]]) -> None:
    rows = october[1]
    assert sum(r["category_code"] == "" for r in rows) / ROWS == pytest.approx(0.3184, abs=0.03)
    assert sum(r["brand"] == "" for r in rows) / ROWS == pytest.approx(0.1440, abs=0.025)
    assert len({r["user_id"] for r in rows}) / ROWS == pytest.approx(3_022_290 / 42_448_764, rel=0.08)
    assert len({r["user_session"] for r in rows}) / ROWS == pytest.approx(9_244_422 / 42_448_764, rel=0.08)
    assert 500 <= len({r["category_id"] for r in rows}) <= 624
    assert 20_000 <= len({r["product_id"] for r in rows}) <= 166_794
    assert 1_000 <= len({r["brand"] for r in rows}) <= 3_445
    assert len({r["category_code"] for r in rows}) >= 60


def test_prices(october: tuple[Path, list[dict[str, str]]]) -> None:
    prices = [float(r["price"]) for r in october[1]]
    assert min(prices) == 0.0
    assert max(prices) <= 2574.07
    assert 220 <= statistics.fmean(prices) <= 400  # 290.32 in the full file
    assert 120 <= statistics.median(prices) <= 230  # about 165 (Nov)
    assert 0.58 <= sum(p > 100 for p in prices) / len(prices) <= 0.78  # 65.4%
    assert any(r["price"].endswith("0") for r in october[1])  # trailing zeros are kept


def test_catalogue_and_sessions_are_consistent(october: tuple[Path, list[dict[str, str]]]) -> None:
    code_of: dict[str, set[str]] = defaultdict(set)
    product: dict[str, set[tuple[str, str, str, str]]] = defaultdict(set)
    user_of: dict[str, set[str]] = defaultdict(set)
    for r in october[1]:
        code_of[r["category_id"]].add(r["category_code"])
        product[r["product_id"]].add((r["category_id"], r["category_code"], r["brand"], r["price"]))
        user_of[r["user_session"]].add(r["user_id"])
    assert all(len(v) == 1 for v in code_of.values())
    assert all(len(v) == 1 for v in product.values())
    assert all(len(v) == 1 for v in user_of.values())


def test_carts_and_purchases_follow_a_view_of_the_same_session(
    october: tuple[Path, list[dict[str, str]]],
) -> None:
    viewed: set[tuple[str, str]] = set()
    for r in october[1]:
        key = (r["user_session"], r["product_id"])
        if r["event_type"] == "view":
            viewed.add(key)
        else:
            assert key in viewed, r


def test_same_top_level_categories_as_the_real_rows(
    october: tuple[Path, list[dict[str, str]]], real_rows: list[dict[str, str]]
) -> None:
    def prefixes(rows: list[dict[str, str]]) -> set[str]:
        return {r["category_code"].split(".")[0] for r in rows if r["category_code"]}

    assert prefixes(october[1]) == prefixes(real_rows)
    real_codes = {r["category_code"] for r in real_rows}
    ours = {r["category_code"] for r in october[1]}
    assert ours <= real_codes
    real_brands = {r["brand"] for r in real_rows}
    assert len(real_brands & {r["brand"] for r in october[1]}) >= 100


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first = b"".join(generate("Nov", 70_000, seed=3))
    assert first == b"".join(generate("nov", 70_000, seed=3))
    assert first != b"".join(generate("Nov", 70_000, seed=4))
    text = first.decode()
    assert text.count("\n") == 70_001
    assert text.split("\n", 2)[1].startswith("2019-11-")


def test_large_outputs_are_streamed_in_bounded_batches() -> None:
    chunks = list(generate("Oct", 2 * ecommerce._BATCH + 5, seed=1))
    assert len(chunks) == 4  # the header and three batches
    assert [c.count(b"\n") for c in chunks] == [1, ecommerce._BATCH, ecommerce._BATCH, 5]


def test_tiny_outputs() -> None:
    for rows in (1, 2, 3, 17):
        text = b"".join(generate("Oct", rows)).decode()
        assert text.count("\n") == rows + 1


@pytest.mark.parametrize(
    ("month", "rows", "seed", "message"),
    [
        ("Dec", 10, 0, "month 'Dec' is not one of the published files; use one of: Oct, Nov"),
        ("Oct", 0, 0, "rows must be a positive number of events, got 0"),
        ("Oct", -5, 0, "rows must be a positive number of events, got -5"),
        ("Oct", 10, -1, "seed must be zero or positive, got -1"),
    ],
)
def test_bad_arguments(month: str, rows: int, seed: int, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        generate(month, rows, seed)


def _cli(*args: str) -> tuple[int, str]:
    root = typer.Typer()
    root.add_typer(example_app, name="example-data")
    result = CliRunner().invoke(root, ["example-data", "ecommerce", *args])
    return result.exit_code, result.output


def test_cli_writes_the_file(tmp_path: Path) -> None:
    code, output = _cli("--month", "Nov", "--rows", "1000", "--seed", "5", "--out", str(tmp_path / "d"))
    assert code == 0, output
    path = tmp_path / "d" / "2019-Nov.csv"
    assert f"wrote {path}" in output
    assert path.read_bytes() == b"".join(generate("Nov", 1000, seed=5))


def test_cli_errors(tmp_path: Path) -> None:
    code, output = _cli("--month", "Sept", "--rows", "10", "--out", str(tmp_path))
    assert code == 2
    assert "month 'Sept' is not one of the published files" in output
    code, output = _cli("--rows", "0", "--out", str(tmp_path))
    assert code == 2
    assert "rows must be a positive number" in output
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, output = _cli("--rows", "10", "--out", str(blocker / "sub"))
    assert code == 1
    assert f"cannot write into {blocker / 'sub'}" in output
    assert not (tmp_path / "2019-Oct.csv").exists()
