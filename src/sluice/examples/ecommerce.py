"""Synthetic clickstream in the format of the public "eCommerce behavior data from multi category store".

The real data set (REES46 Marketing Platform, https://rees46.com; published on Kaggle as
https://www.kaggle.com/datasets/mkechinov/ecommerce-behavior-data-from-multi-category-store, free to use
when both links are cited) has one CSV per month: ``2019-Oct.csv`` (42.4M events) and ``2019-Nov.csv``
(67.5M events). This module writes files with the same header, column order and text format, and with
the statistics the public write-ups report for the full files (see docs/guide/example-data.md):

- event types view/cart/purchase in the month's exact shares (no ``remove_from_cart``: the Oct and Nov
  files have none);
- a product catalogue of the month's size (166,794 or 190,662 products, 624 or 684 category ids of 19
  digits, about 3,444 or 4,200 brands); category_code is fixed per category id and brand and price per
  product; row-level empty rates of category_code and brand as in the full files;
- prices with two decimals (trailing zeros kept) from 0.00 to 2574.07, zeros included;
- users and sessions in the full files' proportions to rows; a session belongs to one user and lasts
  minutes; carts and purchases are of a product the same session viewed earlier;
- increasing ``YYYY-MM-DD HH:MM:SS UTC`` times spread over the whole month.

The same (month, rows, seed) gives byte-identical output (with the same numpy version). Rows are
built with numpy in batches (bounded memory): each batch is a byte matrix of fixed-width, zero-padded
fields (time, event type, the product's pre-rendered fields, the session's ``user_id,user_session``);
dropping the zero bytes leaves the CSV text (over a million rows a second, see the benchmark).
The category codes and the real brand names come from the first 4,999 rows of ``2019-Oct.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"

#: Highest price in both months; prices are written in cents to stay exact.
MAX_PRICE_CENTS = 257_407
_MEDIAN_PRICE_CENTS = 16_460  # median row price (Nov write-up; Oct's mean is close to Nov's)

_BATCH = 1 << 16
_SESSION_SPAN_S = 900  # a session's rows spread over about this many seconds
_MAX_WINDOW = 1 << 16  # sessions open at the same time, at most
_CATEGORY_ID_RANGE = (2_053_013_552_226_107_603, 2_175_419_595_093_967_000)
_PRODUCT_ID_RANGE = (1_000_000, 60_500_000)
_NON_V4_SESSIONS = 0.02  # share of real session ids that are not UUID4 (random hex in the same layout)
_USER_ID_BASE = 100_000_000
_USER_ID_SPAN = 500_000_000
_USER_ID_STRIDE = 387_420_489  # 3**18, coprime with the span: user index -> id is a bijection


@dataclass(frozen=True)
class Month:
    """The published statistics of one month's full file."""

    name: str
    number: int
    days: int
    rows: int
    carts: int
    purchases: int
    empty_code: float
    empty_brand: float
    users: int
    sessions: int
    products: int
    categories: int
    brands: int
    zero_price_rows: int


MONTHS: dict[str, Month] = {
    "Oct": Month(
        name="Oct",
        number=10,
        days=31,
        rows=42_448_764,
        carts=926_516,
        purchases=742_849,
        empty_code=0.3184,
        empty_brand=0.1440,
        users=3_022_290,
        sessions=9_244_422,
        products=166_794,
        categories=624,
        brands=3_444,
        zero_price_rows=68_673,
    ),
    "Nov": Month(
        name="Nov",
        number=11,
        days=30,
        rows=67_501_979,
        carts=3_028_930,
        purchases=916_939,
        empty_code=0.3244,
        empty_brand=0.1366,
        users=3_696_117,
        sessions=13_776_050,
        products=190_662,
        categories=684,
        brands=4_200,
        zero_price_rows=188_088,
    ),
}


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: The 93 category codes seen in the first 4,999 rows of 2019-Oct.csv (the full file has 126 with empty).
CATEGORY_CODES: tuple[str, ...] = _words(
    """accessories.bag accessories.umbrella accessories.wallet apparel.dress apparel.shoes apparel.shoes.keds
    apparel.shoes.moccasins apparel.shoes.sandals apparel.shoes.slipons apparel.sock apparel.trousers
    apparel.underwear appliances.environment.air_conditioner appliances.environment.air_heater
    appliances.environment.vacuum appliances.environment.water_heater appliances.iron appliances.ironing_board
    appliances.kitchen.blender appliances.kitchen.coffee_machine appliances.kitchen.dishwasher
    appliances.kitchen.grill appliances.kitchen.hob appliances.kitchen.hood appliances.kitchen.kettle
    appliances.kitchen.meat_grinder appliances.kitchen.microwave appliances.kitchen.mixer
    appliances.kitchen.oven appliances.kitchen.refrigerators appliances.kitchen.steam_cooker
    appliances.kitchen.toster
    appliances.kitchen.washer appliances.personal.hair_cutter appliances.sewing_machine auto.accessories.alarm
    auto.accessories.compressor auto.accessories.player auto.accessories.radar auto.accessories.videoregister
    computers.components.cpu computers.components.hdd computers.components.memory
    computers.components.motherboard computers.components.power_supply computers.components.videocards
    computers.desktop computers.ebooks computers.notebook computers.peripherals.keyboard
    computers.peripherals.monitor computers.peripherals.mouse computers.peripherals.printer
    construction.components.faucet construction.tools.drill construction.tools.generator
    construction.tools.light construction.tools.pump construction.tools.saw construction.tools.welding
    country_yard.furniture.hammok electronics.audio.acoustic electronics.audio.headphone
    electronics.audio.microphone electronics.audio.music_tools.piano electronics.audio.subwoofer
    electronics.camera.photo electronics.camera.video electronics.clocks electronics.smartphone
    electronics.tablet electronics.telephone electronics.video.projector electronics.video.tv
    furniture.bathroom.bath furniture.bathroom.toilet furniture.bedroom.bed furniture.bedroom.pillow
    furniture.kitchen.chair furniture.kitchen.table furniture.living_room.cabinet furniture.living_room.chair
    furniture.living_room.sofa kids.carriage kids.dolls kids.fmcg.diapers kids.skates kids.toys
    medicine.tools.tonometer sport.bicycle sport.snowboard sport.trainer stationery.cartrige"""
)

#: The most frequent brands of the first 4,999 rows of 2019-Oct.csv, most frequent first.
REAL_BRANDS: tuple[str, ...] = _words(
    """samsung apple xiaomi huawei bosch lucente acer lg cordiant lenovo nokia hp oppo respect sony artel
    elenberg redmond polaris casio stels dauscher triangle starline vitek oasis asus indesit sv vivo karcher
    pulser janome oneplus ariston force omron luminarc electrolux meizu philips baden midea gerat haier
    yokohama tefal nokian bts kingston elari brw beko viatti svc longines panasonic skad garmin gigabyte
    carters gran-stone strobbs microsoft bq honor tissot scarlett tp-link jbl leo dewalt transcend viking
    crown epson fender dell denzel lorelli shimano gorenje kipardo maxxis canon qmax sho-me zeta sokolov
    crucial timberk granhel jvc montale pioneer huter matador logitech erlit nika ritmix orient fassen ballu
    asics laston carver braun tomahawk lego gefest lux riviera pride rush hansa fly kugoo housefit"""
)

_SYLLABLES = ("ka", "ro", "mi", "te", "lu", "sa", "vo", "ne", "di", "za", "po", "ri", "ga", "be", "to", "xi")
_EVENT_TYPES = ("view,", "cart,", "purchase,")

Bytes = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]


def month_profile(month: str) -> Month:
    """The statistics of ``month`` ("Oct" or "Nov", any case); ValueError names the valid ones."""
    for name, profile in MONTHS.items():
        if name.lower() == month.strip().lower():
            return profile
    raise ValueError(f"month {month!r} is not one of the published files; use one of: {', '.join(MONTHS)}")


def file_name(month: str) -> str:
    """The real file's name: ``2019-Oct.csv`` or ``2019-Nov.csv``."""
    return f"2019-{month_profile(month).name}.csv"


MAX_ROWS = 1_000_000_000


def _check(rows: int, seed: int) -> None:
    if rows <= 0:
        raise ValueError(f"rows must be a positive number of events, got {rows}")
    if rows > MAX_ROWS:
        raise ValueError(f"rows must be at most {MAX_ROWS:,} (the real files have 42M and 67M), got {rows:,}")
    if seed < 0:
        raise ValueError(f"seed must be zero or positive, got {seed}")


# ----------------------------------------------------------------------------------------------------
# Text as zero-padded byte matrices: a zero byte is padding, dropped when a batch is written.


def _padded(texts: list[str]) -> Bytes:
    """ASCII ``texts`` as the rows of a zero-padded matrix."""
    width = max(len(t) for t in texts)
    joined = "".join(t.ljust(width, "\0") for t in texts).encode("ascii")
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(texts), width).copy()


def _digits(values: Ints, width: int, keep: int = 1) -> Bytes:
    """Digits of ``values`` in ``width`` columns; leading zeros beyond the last ``keep`` are padding."""
    out = np.empty((len(values), width), np.uint8)
    rest = values.copy()
    for col in range(width - 1, -1, -1):
        out[:, col] = 48 + rest % 10
        rest //= 10
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    leading = values[:, None] < powers[None, :]
    leading[:, width - keep :] = False
    out[leading] = 0
    return out


def _column(char: str, count: int) -> Bytes:
    return np.full((count, 1), ord(char), np.uint8)


# ----------------------------------------------------------------------------------------------------
# Catalogue: categories, brands, products (built once per file)


def _brand_names(count: int, rng: np.random.Generator) -> list[str]:
    names = list(REAL_BRANDS[:count])
    seen = set(names)
    while len(names) < count:
        need = count - len(names)
        parts = rng.integers(0, len(_SYLLABLES), (2 * need, 4)).tolist()
        lengths = rng.integers(2, 5, 2 * need).tolist()
        for syllables, length in zip(parts, lengths, strict=True):
            name = "".join(_SYLLABLES[p] for p in syllables[:length])
            if name not in seen and len(names) < count:
                seen.add(name)
                names.append(name)
    return names


def _categories(month: Month, rng: np.random.Generator) -> tuple[Bytes, npt.NDArray[np.bool_], Ints]:
    """Per category id: the text ``category_id,category_code,``, whether the code is empty, a median price."""
    ids: set[int] = set()
    while len(ids) < month.categories:
        ids.update(int(x) for x in rng.integers(*_CATEGORY_ID_RANGE, month.categories - len(ids)))
    extra = (month.categories - len(CATEGORY_CODES)) // 4
    codes = list(CATEGORY_CODES) + [
        CATEGORY_CODES[int(i)] for i in rng.integers(0, len(CATEGORY_CODES), extra)
    ]
    codes += [""] * (month.categories - len(codes))
    codes = [codes[int(i)] for i in rng.permutation(len(codes))]
    text = _padded([f"{cid},{code}," for cid, code in zip(sorted(ids), codes, strict=True)])
    medians = np.exp(math.log(185.0) + 0.6 * rng.standard_normal(month.categories)) * 100
    return text, np.array([c == "" for c in codes]), medians.astype(np.int64)


def _zipf(count: int, exponent: float, offset: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    weights = 1.0 / (np.arange(count) + offset) ** exponent
    return np.asarray(weights[rng.permutation(count)] / weights.sum(), dtype=np.float64)


def _prices(medians: Ints, weights: npt.NDArray[np.float64], month: Month, rng: np.random.Generator) -> Bytes:
    """``price,`` per product: lognormal around its category's median, scaled to the reference's median
    row price, capped at the maximum, zeros at the month's row rate."""
    count = len(medians)
    raw = medians * np.exp(0.95 * rng.standard_normal(count))
    order = np.argsort(raw)
    middle = raw[order[np.searchsorted(np.cumsum(weights[order]), 0.5)]]
    cents = np.minimum(np.rint(raw * (_MEDIAN_PRICE_CENTS / middle)), MAX_PRICE_CENTS).astype(np.int64)
    order = rng.permutation(count)
    cents[order[np.cumsum(weights[order]) <= month.zero_price_rows / month.rows]] = 0
    cents[int(rng.integers(count))] = MAX_PRICE_CENTS
    return np.hstack(
        [_digits(cents // 100, 4), _column(".", count), _digits(cents % 100, 2, keep=2), _column(",", count)]
    )


@lru_cache(maxsize=2)
def catalogue(month: Month, seed: int) -> tuple[Bytes, npt.NDArray[np.int32]]:
    """The products' ``product_id,category_id,category_code,brand,price,`` rows and a sampling table.

    The table has 2**20 slots; each product takes slots in proportion to its popularity (at least one),
    so a uniformly random slot is a product drawn with the catalogue's popularity. The last two
    catalogues are cached (about 15 MB each).
    """
    rng = np.random.default_rng([seed, month.number, 1])
    category_text, code_empty, medians = _categories(month, rng)
    brands = _brand_names(month.brands, rng)
    brand_text = _padded([f"{b}," for b in brands] + [","])
    count = month.products
    category_of = rng.choice(month.categories, size=count, p=_zipf(month.categories, 1.0, 3.0, rng))
    brand_p = 1.0 / (np.arange(month.brands) + 2.0) ** 1.1
    brand_of = rng.choice(month.brands, size=count, p=brand_p / brand_p.sum())
    no_brand = rng.random(count) < 0.2
    brand_of[no_brand] = month.brands
    weights = _zipf(count, 0.9, 10.0, rng)
    groups = 2 * code_empty[category_of].astype(np.int64) + no_brand
    ec, eb = month.empty_code, month.empty_brand
    targets = np.array([(1 - ec) * (1 - eb), (1 - ec) * eb, ec * (1 - eb), ec * eb])
    mass = np.bincount(groups, weights=weights, minlength=4)
    weights = weights * np.divide(targets, mass, out=np.zeros(4), where=mass > 0)[groups]
    weights /= weights.sum()
    ids = rng.choice(_PRODUCT_ID_RANGE[1] - _PRODUCT_ID_RANGE[0], size=count, replace=False)
    rows = np.hstack(
        [
            _digits(ids + _PRODUCT_ID_RANGE[0], 8),
            _column(",", count),
            category_text[category_of],
            brand_text[brand_of],
            _prices(medians[category_of], weights, month, rng),
        ]
    )
    size = 1 << 20
    slots = 1 + np.floor(weights * (size - count)).astype(np.int64)
    table = np.repeat(np.arange(count, dtype=np.int32), slots)
    table = np.concatenate([table, np.full(size - len(table), int(np.argmax(weights)), np.int32)])
    rows.setflags(write=False)  # cached and shared: read-only
    table.setflags(write=False)
    return rows, table


# ----------------------------------------------------------------------------------------------------
# Rows


def _effective_users(users: int, sessions: int) -> int:
    """How many users to draw sessions from uniformly so that about ``users`` distinct ones occur."""
    pool = float(users)
    for _ in range(50):
        pool = users / -math.expm1(-sessions / pool)
    return max(1, round(pool))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_DASHES = (8, 13, 18, 23)


def _clock_words(month: Month) -> tuple[npt.NDArray[np.uint64], ...]:
    """``YYYY-MM-DD HH:MM:SS UTC,`` as three 8-byte words: constant, per minute of the month, per second."""
    minute = np.arange(month.days * 1440, dtype=np.int64)
    text = np.frombuffer(b"01 00:00" * len(minute), np.uint8).reshape(-1, 8).copy()
    for col, value in ((0, minute // 1440 + 1), (3, minute // 60 % 24), (6, minute % 60)):
        text[:, col] = 48 + value // 10
        text[:, col + 1] = 48 + value % 10
    seconds = "".join(f":{s:02d} UTC," for s in range(60)).encode()
    prefix = f"2019-{month.number:02d}-".encode()
    return tuple(np.frombuffer(b, np.uint64) for b in (prefix, text.tobytes(), seconds))


class _Generator:
    """One file's rows, batch by batch, from seeded numpy generators."""

    def __init__(self, month: Month, rows: int, seed: int) -> None:
        self.month, self.rows = month, rows
        self.rng = np.random.default_rng([seed, month.number, rows, 2])
        self.products, self.table = catalogue(month, seed)
        self.seconds = month.days * 86_400
        self.clock = _clock_words(month)
        self.types = _padded(list(_EVENT_TYPES))
        self.sessions = max(1, round(rows * month.sessions / month.rows))
        users = max(1, round(rows * month.users / month.rows))
        self.user_pool = _effective_users(users, self.sessions)
        self.user_offset = int(self.rng.integers(_USER_ID_SPAN))
        rate = rows / self.seconds * month.sessions / month.rows * _SESSION_SPAN_S
        self.window = int(max(1, min(rate, _MAX_WINDOW, self.sessions)))
        self.open = np.zeros((0, 47), np.uint8)  # rendered sessions from index self.open_lo on
        self.open_lo = 0

    def _render_sessions(self, count: int) -> Bytes:
        """``user_id,user_session\\n`` (47 bytes) for ``count`` new sessions."""
        users = self.rng.integers(0, self.user_pool, count)
        uids = _USER_ID_BASE + (users * _USER_ID_STRIDE + self.user_offset) % _USER_ID_SPAN
        nibbles = self.rng.integers(0, 16, (count, 32))
        v4 = self.rng.random(count) >= _NON_V4_SESSIONS
        nibbles[v4, 12] = 4
        nibbles[v4, 16] = 8 + (nibbles[v4, 16] & 3)
        hexes = _HEX[nibbles]
        uuid = np.full((count, 36), ord("-"), np.uint8)
        src = 0
        for lo, hi in zip((0, *(d + 1 for d in _UUID_DASHES)), (*_UUID_DASHES, 36), strict=True):
            uuid[:, lo:hi] = hexes[:, src : src + hi - lo]
            src += hi - lo
        return np.hstack([_digits(uids, 9), _column(",", count), uuid, _column("\n", count)])

    def _sessions(self, index: Ints) -> Ints:
        """Rows of ``self.open`` for the rows ``index``: row i draws among the sessions open at i."""
        span = self.sessions - self.window
        base = index * span // self.rows
        lo, hi = int(base[0]), int(base[-1]) + self.window
        if lo > self.open_lo:
            self.open = self.open[lo - self.open_lo :]
            self.open_lo = lo
        missing = hi - (self.open_lo + len(self.open))
        if missing > 0:
            self.open = np.concatenate([self.open, self._render_sessions(missing)])
        return np.asarray(base + self.rng.integers(0, self.window, len(index)) - self.open_lo, dtype=np.int64)

    def _times(self, index: Ints) -> Bytes:
        """Times increasing with the row: row i at (i + u) / rows of the month, u uniform in [0, 1)."""
        seconds = ((index + self.rng.random(len(index))) * (self.seconds / self.rows)).astype(np.int64)
        minute, second = np.divmod(np.minimum(seconds, self.seconds - 1), 60)
        words = np.empty((len(index), 3), np.uint64)
        words[:, 0] = self.clock[0][0]
        words[:, 1] = self.clock[1][minute]
        words[:, 2] = self.clock[2][second]
        return words.view(np.uint8)

    def _events(self, start: int, stop: int, products: Ints, sessions: Ints) -> Ints:
        """Event type indexes; carts and purchases repeat an earlier view of the same session."""
        month, size = self.month, stop - start
        carts = stop * month.carts // month.rows - start * month.carts // month.rows
        buys = stop * month.purchases // month.rows - start * month.purchases // month.rows
        special = min(carts + buys, size - 1)
        types = np.zeros(size, np.int64)
        if special <= 0:
            return types
        positions = self.rng.choice(size - 1, size=special, replace=False) + 1
        is_special = np.zeros(size, np.bool_)
        is_special[positions] = True
        earlier = positions - 1 - self.rng.integers(0, np.minimum(positions, 64))
        while (hit := is_special[earlier]).any():
            earlier[hit] -= 1  # row 0 is never special, so this stops at a view
        products[positions] = products[earlier]
        sessions[positions] = sessions[earlier]
        types[positions] = np.array([1] * carts + [2] * buys)[:special]
        return types

    def batches(self) -> Iterator[bytes]:
        for start in range(0, self.rows, _BATCH):
            stop = min(start + _BATCH, self.rows)
            index = np.arange(start, stop, dtype=np.int64)
            times = self._times(index)
            sessions = self._sessions(index)
            products = self.table[self.rng.integers(0, len(self.table), stop - start)].astype(np.int64)
            types = self._events(start, stop, products, sessions)
            matrix = np.hstack([times, self.types[types], self.products[products], self.open[sessions]])
            yield matrix.tobytes().translate(None, b"\0")


def generate(month: str, rows: int, seed: int = 0) -> Iterator[bytes]:
    """The file's bytes in chunks: the header, then batches of rows. ValueError on bad arguments."""
    profile = month_profile(month)
    _check(rows, seed)
    return _chunks(profile, rows, seed)


def _chunks(profile: Month, rows: int, seed: int) -> Iterator[bytes]:
    yield HEADER.encode()
    yield from _Generator(profile, rows, seed).batches()


def write_csv(out_dir: Path, month: str, rows: int, seed: int = 0) -> Path:
    """Write ``out_dir/2019-<Month>.csv`` (creating ``out_dir``) and return its path.

    ValueError for a bad month, row count or seed; OSError when the directory cannot be created or written.
    """
    chunks = generate(month, rows, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / file_name(month)
    with path.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
    return path
