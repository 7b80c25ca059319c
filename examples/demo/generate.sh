#!/usr/bin/env bash
# Regenerate the fedtest demo data from scratch.
#
# Creates the sample project `invoicekit` (embedded below) as a fresh git
# repository in a temp dir, replays its 40-commit history, runs the project's
# real pytest suite at every commit and writes
#   examples/demo/builds/NN/{junit.xml,changed.txt,meta.txt}
#   examples/demo/README.md
#   src/demo/builds.rs
# Everything is deterministic (commit ids, failures) except test durations.
#
# Requirements: bash, git, python3 >= 3.9 with pytest installed.
# Environment:  PYTHON   interpreter to use (default python3)
#               DEMO_SRC keep the sample repository at this (new or empty) path
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -m pytest --version >/dev/null 2>&1; then
    echo "generate.sh: pytest is required ($PYTHON -m pip install pytest)" >&2
    exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fedtest-demo.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
REPO="${DEMO_SRC:-$TMP/demo-src}"

cat > "$TMP/driver.py" <<'PY'
"""Build the invoicekit sample repository commit by commit and record CI runs.

usage: driver.py REPO_DIR DEMO_DIR RUST_OUT
"""
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

REPO, DEMO, RUST_OUT = sys.argv[1:4]
BUILDS_DIR = os.path.join(DEMO, "builds")
FLAKY = "tests/test_inventory.py::test_reservation_survives_checkout_latency"

AUTHORS = [
    ("Dana Ortiz", "dana@invoicekit.example"),
    ("Sam Keller", "sam@invoicekit.example"),
    ("Priya Nair", "priya@invoicekit.example"),
]

BASE_ENV = dict(os.environ)
for key in list(BASE_ENV):
    if key.startswith(("GIT_", "PYTEST_")):
        del BASE_ENV[key]
BASE_ENV.update(
    GIT_CONFIG_GLOBAL=os.devnull,
    GIT_CONFIG_NOSYSTEM="1",
    PYTHONHASHSEED="0",
    PYTHONDONTWRITEBYTECODE="1",
    LC_ALL="C.UTF-8",
    TZ="UTC",
)


def T(text):
    """Strip the 8-space indentation used for embedded file contents below."""
    out = []
    for line in text.lstrip("\n").split("\n"):
        if line.startswith(" " * 8):
            out.append(line[8:])
        elif line.strip() == "":
            out.append("")
        else:
            raise SystemExit(f"badly indented embedded line: {line!r}")
    return "\n".join(out)


def path_of(rel):
    return os.path.join(REPO, rel)


def write(rel, text):
    full = path_of(rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as fh:
        fh.write(T(text))


def read(rel):
    with open(path_of(rel), encoding="utf-8") as fh:
        return fh.read()


def edit(rel, old, new):
    """Replace one exact occurrence of ``old`` (both dedented) in ``rel``."""
    text = read(rel)
    old, new = T(old), T(new)
    count = text.count(old)
    if count != 1:
        raise SystemExit(f"edit {rel}: expected 1 match, found {count}:\n{old}")
    with open(path_of(rel), "w", encoding="utf-8") as fh:
        fh.write(text.replace(old, new))


def append(rel, text):
    with open(path_of(rel), "a", encoding="utf-8") as fh:
        fh.write("\n\n" + T(text))


def git(*args, env=None, capture=False):
    res = subprocess.run(
        ["git", *args], cwd=REPO, env=env or BASE_ENV, check=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
    )
    return res.stdout.decode() if capture else None


def move(old, new):
    git("mv", old, new)


STEPS = []


def step(message, kind="change"):
    def register(fn):
        STEPS.append((message, kind, fn))
        return fn
    return register


# --------------------------------------------------------------------------
# 01
@step("Initial project skeleton with Money type")
def _():
    write(".gitignore", """
        __pycache__/
        *.pyc
        .pytest_cache/
        *.egg-info/
        build/
        dist/
    """)
    write("pyproject.toml", """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "invoicekit"
        version = "0.1.0"
        description = "Small invoicing and inventory toolkit for the shop back office"
        requires-python = ">=3.9"

        [tool.setuptools.packages.find]
        where = ["src"]

        [tool.pytest.ini_options]
        testpaths = ["tests"]
        pythonpath = ["src"]
        addopts = "--tb=short"
    """)
    write("README.md", """
        # invoicekit

        Small invoicing and inventory toolkit used by the shop back office.

        ```
        pip install -e .
        python -m pytest
        ```
    """)
    write("src/invoicekit/__init__.py", '''
        """invoicekit: invoicing and inventory helpers."""

        __version__ = "0.1.0"
    ''')
    write("src/invoicekit/money.py", '''
        """Money values backed by exact decimal arithmetic."""
        from __future__ import annotations

        from dataclasses import dataclass
        from decimal import ROUND_HALF_UP, Decimal
        from typing import Iterable, List, Union

        Number = Union[int, str, Decimal]

        #: Number of minor-unit digits per ISO 4217 currency.
        MINOR_UNITS = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0}


        class CurrencyMismatch(ValueError):
            """Raised when two amounts in different currencies are combined."""


        @dataclass(frozen=True)
        class Money:
            amount: Decimal
            currency: str = "EUR"

            def __post_init__(self) -> None:
                if self.currency not in MINOR_UNITS:
                    raise ValueError(f"unknown currency {self.currency!r}")
                if isinstance(self.amount, float):
                    raise TypeError("use str or Decimal amounts, not float")
                object.__setattr__(self, "amount", Decimal(self.amount))

            @classmethod
            def zero(cls, currency: str = "EUR") -> "Money":
                return cls(Decimal(0), currency)

            def _same_currency(self, other: "Money") -> None:
                if other.currency != self.currency:
                    raise CurrencyMismatch(
                        f"cannot combine {self.currency} and {other.currency}"
                    )

            def __add__(self, other):
                if not isinstance(other, Money):
                    return NotImplemented
                self._same_currency(other)
                return Money(self.amount + other.amount, self.currency)

            def __radd__(self, other):
                # lets sum() work on an iterable of Money
                if other == 0:
                    return self
                return self.__add__(other)

            def __sub__(self, other):
                if not isinstance(other, Money):
                    return NotImplemented
                self._same_currency(other)
                return Money(self.amount - other.amount, self.currency)

            def __neg__(self):
                return Money(-self.amount, self.currency)

            def __mul__(self, factor: Number):
                if isinstance(factor, (Money, float)):
                    return NotImplemented
                return Money(self.amount * Decimal(factor), self.currency)

            __rmul__ = __mul__

            def __lt__(self, other):
                if not isinstance(other, Money):
                    return NotImplemented
                self._same_currency(other)
                return self.amount < other.amount

            def __le__(self, other):
                if not isinstance(other, Money):
                    return NotImplemented
                self._same_currency(other)
                return self.amount <= other.amount

            def is_zero(self) -> bool:
                return self.amount == 0

            def rounded(self) -> "Money":
                quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
                return Money(
                    self.amount.quantize(quantum, rounding=ROUND_HALF_UP), self.currency
                )

            def allocate(self, ratios: Iterable[int]) -> List["Money"]:
                """Split into parts proportional to ``ratios`` without losing a cent."""
                ratios = list(ratios)
                if not ratios or any(r < 0 for r in ratios) or sum(ratios) == 0:
                    raise ValueError("ratios must be non-negative and not all zero")
                quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
                units = int(self.rounded().amount / quantum)
                parts = [units * r // sum(ratios) for r in ratios]
                for i in range(units - sum(parts)):
                    parts[i] += 1
                return [Money(p * quantum, self.currency) for p in parts]

            def __str__(self) -> str:
                places = MINOR_UNITS[self.currency]
                return f"{self.rounded().amount:,.{places}f} {self.currency}"
    ''')
    write("tests/test_money.py", '''
        from decimal import Decimal

        import pytest

        from invoicekit.money import CurrencyMismatch, Money


        def test_amount_is_stored_as_decimal():
            assert Money("10.5").amount == Decimal("10.5")
            assert Money(3).amount == Decimal(3)


        def test_float_amounts_are_rejected():
            with pytest.raises(TypeError):
                Money(0.1)


        def test_unknown_currency_is_rejected():
            with pytest.raises(ValueError, match="unknown currency"):
                Money("1", "XYZ")


        def test_add_different_currencies_raises():
            with pytest.raises(CurrencyMismatch):
                Money("1", "EUR") + Money("1", "USD")


        def test_sum_of_amounts():
            assert Money("1.10") + Money("2.20") == Money("3.30")
            assert sum([Money("1"), Money("2"), Money("3.5")]) == Money("6.5")


        def test_subtract_and_negate():
            assert Money("5") - Money("7.25") == Money("-2.25")
            assert -Money("3") == Money("-3")


        def test_multiply_by_quantity():
            assert Money("2.50") * 3 == Money("7.50")
            assert 3 * Money("2.50") == Money("7.50")
            assert Money("10") * Decimal("0.19") == Money("1.9")


        @pytest.mark.parametrize(
            "raw, expected",
            [
                ("2.344", "2.34"),
                ("2.345", "2.35"),
                ("0.125", "0.13"),
                ("-1.005", "-1.01"),
                ("7", "7.00"),
            ],
        )
        def test_rounding_is_half_up(raw, expected):
            assert str(Money(raw).rounded().amount) == expected


        def test_jpy_has_no_minor_unit():
            assert str(Money("1234.5", "JPY").rounded().amount) == "1235"


        @pytest.mark.parametrize(
            "money, text",
            [
                (Money("1234.5"), "1,234.50 EUR"),
                (Money("0.005", "USD"), "0.01 USD"),
                (Money("98765", "JPY"), "98,765 JPY"),
            ],
        )
        def test_str_formatting(money, text):
            assert str(money) == text


        def test_allocate_splits_without_losing_cents():
            parts = Money("100").allocate([1, 1, 1])
            assert parts == [Money("33.34"), Money("33.33"), Money("33.33")]
            assert sum(parts) == Money("100")
            assert Money("10").allocate([3, 1]) == [Money("7.50"), Money("2.50")]


        def test_allocate_rejects_zero_ratios():
            with pytest.raises(ValueError):
                Money("1").allocate([0, 0])


        def test_comparison_and_zero():
            assert Money("1") < Money("2")
            assert Money("2") >= Money("2")
            assert Money.zero().is_zero()
            with pytest.raises(CurrencyMismatch):
                Money("1", "EUR") < Money("1", "GBP")
    ''')


# --------------------------------------------------------------------------
# 02
@step("Add VAT calculation module")
def _():
    write("src/invoicekit/tax.py", '''
        """Value-added tax rules for the jurisdictions we invoice in."""
        from __future__ import annotations

        from decimal import Decimal

        from .money import Money

        STANDARD_RATES = {
            "DE": Decimal("0.19"),
            "FR": Decimal("0.20"),
            "NL": Decimal("0.21"),
            "GB": Decimal("0.20"),
            "US": Decimal("0"),
        }


        class UnknownJurisdiction(KeyError):
            """No tax rules are known for the given country."""


        def rate_for(country: str) -> Decimal:
            try:
                return STANDARD_RATES[country.upper()]
            except KeyError:
                raise UnknownJurisdiction(country) from None


        def tax_on(net: Money, country: str) -> Money:
            return (net * rate_for(country)).rounded()


        def gross(net: Money, country: str) -> Money:
            return net + tax_on(net, country)


        def net_from_gross(gross_amount: Money, country: str) -> Money:
            rate = rate_for(country)
            return Money(gross_amount.amount / (1 + rate), gross_amount.currency).rounded()
    ''')
    write("tests/test_tax.py", '''
        import time
        from decimal import Decimal

        import pytest

        from invoicekit.money import Money
        from invoicekit.tax import (
            STANDARD_RATES,
            UnknownJurisdiction,
            gross,
            net_from_gross,
            rate_for,
            tax_on,
        )


        @pytest.mark.parametrize(
            "country, rate",
            [("DE", "0.19"), ("FR", "0.20"), ("NL", "0.21"), ("GB", "0.20"), ("US", "0")],
        )
        def test_standard_rates(country, rate):
            assert rate_for(country) == Decimal(rate)


        def test_country_codes_are_case_insensitive():
            assert rate_for("de") == rate_for("DE")


        def test_unknown_country_raises():
            with pytest.raises(UnknownJurisdiction):
                rate_for("XX")


        def test_tax_is_rounded_to_cents():
            assert tax_on(Money("10.55"), "DE") == Money("2.00")


        def test_half_cent_of_tax_rounds_up():
            assert str(tax_on(Money("0.50"), "NL")) == "0.11 EUR"


        def test_gross_adds_tax():
            assert gross(Money("100"), "FR") == Money("120.00")


        def test_net_from_gross_roundtrip():
            assert net_from_gross(Money("119.00"), "DE") == Money("100.00")


        def test_zero_rate_country():
            assert tax_on(Money("99.99", "USD"), "US").is_zero()


        def test_rate_table_matches_published_rates():
            # mirrors the nightly job that cross-checks against the published
            # rate sheet; the sleep stands in for reading that sheet
            time.sleep(0.12)
            published = {"DE": "19%", "FR": "20%", "NL": "21%", "GB": "20%", "US": "0%"}
            for country, text in published.items():
                assert STANDARD_RATES[country] * 100 == Decimal(text.rstrip("%"))
    ''')


# --------------------------------------------------------------------------
# 03
@step("Add inventory with time-limited reservations")
def _():
    write("src/invoicekit/inventory.py", '''
        """Stock levels with time-limited reservations."""
        from __future__ import annotations

        import itertools
        import time
        from dataclasses import dataclass
        from typing import Callable, Dict, List, Optional

        from .money import Money


        class OutOfStock(Exception):
            """Not enough unreserved stock to satisfy a request."""


        class UnknownItem(KeyError):
            """No item with that SKU exists."""


        class ReservationExpired(Exception):
            """The reservation lapsed before it was committed."""


        @dataclass
        class Item:
            sku: str
            name: str
            unit_price: Money
            quantity: int = 0


        @dataclass
        class Reservation:
            id: int
            sku: str
            quantity: int
            expires_at: Optional[float] = None

            def expired(self, now: float) -> bool:
                return self.expires_at is not None and now >= self.expires_at


        class Inventory:
            def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
                self._clock = clock
                self._items: Dict[str, Item] = {}
                self._reservations: Dict[int, Reservation] = {}
                self._ids = itertools.count(1)

            def __repr__(self) -> str:
                return f"<Inventory {len(self._items)} items, {len(self._reservations)} reservations>"

            def add(self, sku: str, name: str, unit_price: Money, quantity: int = 0) -> Item:
                if sku in self._items:
                    raise ValueError(f"duplicate sku {sku!r}")
                if quantity < 0:
                    raise ValueError("quantity cannot be negative")
                item = Item(sku, name, unit_price, quantity)
                self._items[sku] = item
                return item

            def get(self, sku: str) -> Item:
                try:
                    return self._items[sku]
                except KeyError:
                    raise UnknownItem(sku) from None

            def restock(self, sku: str, quantity: int) -> None:
                if quantity <= 0:
                    raise ValueError("restock quantity must be positive")
                self.get(sku).quantity += quantity

            def _live_reservations(self, sku: str) -> List[Reservation]:
                now = self._clock()
                return [
                    r for r in self._reservations.values()
                    if r.sku == sku and not r.expired(now)
                ]

            def reserved(self, sku: str) -> int:
                return sum(r.quantity for r in self._live_reservations(sku))

            def available(self, sku: str) -> int:
                return self.get(sku).quantity - self.reserved(sku)

            def reserve(self, sku: str, quantity: int, ttl: Optional[float] = None) -> int:
                if quantity <= 0:
                    raise ValueError("reservation quantity must be positive")
                free = self.available(sku)
                if quantity > free:
                    raise OutOfStock(f"{sku}: wanted {quantity}, {free} available")
                rid = next(self._ids)
                expires = None if ttl is None else self._clock() + ttl
                self._reservations[rid] = Reservation(rid, sku, quantity, expires)
                return rid

            def release(self, reservation_id: int) -> None:
                self._reservations.pop(reservation_id, None)

            def commit(self, reservation_id: int) -> Item:
                """Turn a reservation into a sale, removing the goods from stock."""
                try:
                    res = self._reservations.pop(reservation_id)
                except KeyError:
                    raise KeyError(f"no reservation {reservation_id}") from None
                if res.expired(self._clock()):
                    raise ReservationExpired(reservation_id)
                item = self.get(res.sku)
                item.quantity -= res.quantity
                return item

            def value(self) -> Money:
                total = Money.zero()
                for item in self._items.values():
                    total += item.unit_price * item.quantity
                return total.rounded()
    ''')
    write("tests/test_inventory.py", '''
        import os
        import random
        import time

        import pytest

        from invoicekit.inventory import (
            Inventory,
            OutOfStock,
            ReservationExpired,
            UnknownItem,
        )
        from invoicekit.money import Money


        class FakeClock:
            def __init__(self):
                self.now = 1000.0

            def __call__(self):
                return self.now

            def advance(self, seconds):
                self.now += seconds

            def __repr__(self):
                return f"FakeClock(now={self.now})"


        @pytest.fixture
        def clock():
            return FakeClock()


        @pytest.fixture
        def inv(clock):
            inventory = Inventory(clock=clock)
            inventory.add("SKU-1", "Widget", Money("2.50"), 10)
            inventory.add("SKU-2", "Gadget", Money("12.00"), 3)
            return inventory


        def test_add_and_get(inv):
            assert inv.get("SKU-1").name == "Widget"
            assert inv.available("SKU-1") == 10


        def test_duplicate_sku_is_rejected(inv):
            with pytest.raises(ValueError):
                inv.add("SKU-1", "Other widget", Money("1"), 1)


        def test_unknown_sku_raises(inv):
            with pytest.raises(UnknownItem):
                inv.get("NOPE")


        def test_restock_increases_quantity(inv):
            inv.restock("SKU-2", 7)
            assert inv.get("SKU-2").quantity == 10
            with pytest.raises(ValueError):
                inv.restock("SKU-2", 0)


        def test_reserve_reduces_availability(inv):
            inv.reserve("SKU-1", 4)
            assert inv.available("SKU-1") == 6
            assert inv.get("SKU-1").quantity == 10


        def test_cannot_reserve_more_than_available(inv):
            inv.reserve("SKU-2", 2)
            with pytest.raises(OutOfStock):
                inv.reserve("SKU-2", 2)


        def test_release_restores_availability(inv):
            rid = inv.reserve("SKU-1", 4)
            inv.release(rid)
            assert inv.available("SKU-1") == 10


        def test_release_is_idempotent(inv):
            rid = inv.reserve("SKU-2", 3)
            inv.release(rid)
            inv.release(rid)
            assert inv.reserve("SKU-2", 3) != rid


        def test_commit_removes_stock(inv):
            rid = inv.reserve("SKU-1", 4)
            inv.commit(rid)
            assert inv.get("SKU-1").quantity == 6
            assert inv.available("SKU-1") == 6


        def test_expired_reservation_frees_stock(inv, clock):
            inv.reserve("SKU-2", 3, ttl=60)
            assert inv.available("SKU-2") == 0
            clock.advance(61)
            assert inv.available("SKU-2") == 3


        def test_commit_after_expiry_raises(inv, clock):
            rid = inv.reserve("SKU-2", 1, ttl=60)
            clock.advance(60)
            with pytest.raises(ReservationExpired):
                inv.commit(rid)


        def test_stock_value(inv):
            assert inv.value() == Money("61.00")


        def test_bulk_reservation_sweep(clock):
            inventory = Inventory(clock=clock)
            inventory.add("BULK", "Pallet", Money("40"), 300)
            for _ in range(300):
                inventory.reserve("BULK", 1, ttl=30)
            assert inventory.available("BULK") == 0
            time.sleep(0.25)  # the sweeper job talks to the real store; emulate its I/O
            clock.advance(31)
            assert inventory.available("BULK") == 300


        def test_reservation_survives_checkout_latency():
            """A 40 ms hold must outlive the payment gateway round-trip."""
            # The gateway stub answers after an exponentially distributed delay
            # (mean 21 ms) drawn from a generator seeded with the CI build number,
            # so a given build can be replayed; now and then it is slower than the hold.
            rng = random.Random(f"build-{os.environ.get('BUILD_NUMBER', '0')}")
            inventory = Inventory()  # real monotonic clock
            inventory.add("LTD-1", "Limited edition print", Money("99"), 1)
            rid = inventory.reserve("LTD-1", 1, ttl=0.040)
            time.sleep(rng.expovariate(1 / 0.021))
            inventory.commit(rid)
            assert inventory.get("LTD-1").quantity == 0
    ''')


# --------------------------------------------------------------------------
# 04
@step("Add discount rules with quantity tiers")
def _():
    write("src/invoicekit/discounts.py", '''
        """Discount rules applied to invoice lines."""
        from __future__ import annotations

        from dataclasses import dataclass
        from decimal import Decimal
        from typing import Optional

        from .money import Money

        #: (minimum quantity, percent off), checked from the largest tier down.
        QUANTITY_TIERS = [
            (100, Decimal("10")),
            (50, Decimal("5")),
            (10, Decimal("2")),
        ]


        class InvalidDiscount(ValueError):
            """A discount definition is out of range."""


        @dataclass(frozen=True)
        class PercentageDiscount:
            percent: Decimal

            def __post_init__(self) -> None:
                object.__setattr__(self, "percent", Decimal(self.percent))
                if not 0 <= self.percent <= 100:
                    raise InvalidDiscount(f"percent out of range: {self.percent}")

            def apply(self, amount: Money) -> Money:
                return amount - amount * (self.percent / Decimal(100))


        @dataclass(frozen=True)
        class FixedDiscount:
            value: Money

            def apply(self, amount: Money) -> Money:
                result = amount - self.value
                if result.amount < 0:
                    return Money.zero(amount.currency)
                return result


        def tier_percent(quantity: int) -> Decimal:
            for minimum, percent in QUANTITY_TIERS:
                if quantity >= minimum:
                    return percent
            return Decimal(0)


        def quantity_discount(quantity: int) -> Optional[PercentageDiscount]:
            percent = tier_percent(quantity)
            return PercentageDiscount(percent) if percent else None
    ''')
    write("tests/test_discounts.py", '''
        from decimal import Decimal

        import pytest

        from invoicekit.discounts import (
            FixedDiscount,
            InvalidDiscount,
            PercentageDiscount,
            quantity_discount,
            tier_percent,
        )
        from invoicekit.money import CurrencyMismatch, Money


        @pytest.mark.parametrize(
            "quantity, percent",
            [(1, "0"), (9, "0"), (10, "2"), (49, "2"), (50, "5"), (100, "10")],
        )
        def test_quantity_tiers(quantity, percent):
            assert tier_percent(quantity) == Decimal(percent)


        def test_no_discount_object_below_first_tier():
            assert quantity_discount(3) is None


        def test_percentage_discount_applies():
            assert PercentageDiscount("15").apply(Money("200")) == Money("170")


        def test_percentage_discount_validates_range():
            with pytest.raises(InvalidDiscount):
                PercentageDiscount("-1")
            with pytest.raises(InvalidDiscount):
                PercentageDiscount("100.5")


        def test_fixed_discount_subtracts():
            assert FixedDiscount(Money("5")).apply(Money("12.50")) == Money("7.50")


        def test_fixed_discount_never_goes_negative():
            assert FixedDiscount(Money("20")).apply(Money("12.50")).is_zero()


        def test_fixed_discount_currency_must_match():
            with pytest.raises(CurrencyMismatch):
                FixedDiscount(Money("5", "USD")).apply(Money("12.50"))
    ''')


# --------------------------------------------------------------------------
# 05
@step("Add Invoice model with totals")
def _():
    write("src/invoicekit/invoice.py", '''
        """Invoices: line items, totals and tax."""
        from __future__ import annotations

        from dataclasses import dataclass, field
        from datetime import date
        from typing import List, Optional, Union

        from . import tax
        from .discounts import FixedDiscount, PercentageDiscount, quantity_discount
        from .money import CurrencyMismatch, Money

        Discount = Union[PercentageDiscount, FixedDiscount]


        @dataclass
        class LineItem:
            description: str
            unit_price: Money
            quantity: int = 1
            discount: Optional[Discount] = None

            @property
            def list_amount(self) -> Money:
                return self.unit_price * self.quantity

            @property
            def net(self) -> Money:
                amount = self.list_amount
                discount = self.discount or quantity_discount(self.quantity)
                if discount is not None:
                    amount = discount.apply(amount)
                return amount.rounded()


        @dataclass
        class Invoice:
            number: str
            customer: str
            country: str
            issued: date
            currency: str = "EUR"
            lines: List[LineItem] = field(default_factory=list)

            def add_line(
                self,
                description: str,
                unit_price: Money,
                quantity: int = 1,
                discount: Optional[Discount] = None,
            ) -> LineItem:
                if quantity <= 0:
                    raise ValueError("quantity must be positive")
                if unit_price.currency != self.currency:
                    raise CurrencyMismatch(
                        f"line in {unit_price.currency} on a {self.currency} invoice"
                    )
                line = LineItem(description, unit_price, quantity, discount)
                self.lines.append(line)
                return line

            @property
            def subtotal(self) -> Money:
                return sum((line.net for line in self.lines), Money.zero(self.currency))

            @property
            def tax_total(self) -> Money:
                return tax.tax_on(self.subtotal, self.country)

            @property
            def total(self) -> Money:
                return self.subtotal + self.tax_total
    ''')
    write("tests/test_invoice.py", '''
        import time
        from datetime import date

        import pytest

        from invoicekit.discounts import FixedDiscount, PercentageDiscount
        from invoicekit.invoice import Invoice
        from invoicekit.money import CurrencyMismatch, Money


        def make_invoice(country="DE", **kwargs):
            return Invoice(
                number="2024-0001",
                customer="ACME GmbH",
                country=country,
                issued=date(2024, 3, 1),
                **kwargs,
            )


        class TestInvoice:
            def test_empty_invoice_totals_are_zero(self):
                invoice = make_invoice()
                assert invoice.subtotal.is_zero()
                assert invoice.total.is_zero()

            def test_single_line_totals(self):
                invoice = make_invoice()
                invoice.add_line("Widget", Money("10.00"), 2)
                assert invoice.subtotal == Money("20.00")
                assert invoice.tax_total == Money("3.80")
                assert invoice.total == Money("23.80")

            def test_multiple_lines_are_summed(self):
                invoice = make_invoice()
                invoice.add_line("Widget", Money("10.00"), 2)
                invoice.add_line("Cable", Money("5.50"))
                assert invoice.subtotal == Money("25.50")
                assert invoice.tax_total == Money("4.85")

            def test_quantity_discount_applies_to_bulk_lines(self):
                invoice = make_invoice()
                line = invoice.add_line("Screws", Money("0.40"), 10)
                assert line.net == Money("3.92")

            def test_explicit_discount_overrides_tier(self):
                invoice = make_invoice()
                line = invoice.add_line("Chairs", Money("1.00"), 60, PercentageDiscount("10"))
                assert line.net == Money("54.00")

            def test_fixed_discount_line(self):
                invoice = make_invoice()
                line = invoice.add_line("Desk", Money("300"), 1, FixedDiscount(Money("25")))
                assert line.net == Money("275.00")

            def test_rejects_non_positive_quantity(self):
                with pytest.raises(ValueError):
                    make_invoice().add_line("Widget", Money("1"), 0)

            def test_rejects_foreign_currency_line(self):
                with pytest.raises(CurrencyMismatch):
                    make_invoice().add_line("Widget", Money("1", "USD"))

            def test_tax_rounded_on_subtotal(self):
                invoice = make_invoice()
                for _ in range(4):
                    invoice.add_line("Sticker", Money("0.13"))
                assert invoice.tax_total == Money("0.10")

            def test_half_cent_tax_rounds_up(self):
                invoice = make_invoice(country="NL")
                invoice.add_line("Sample", Money("0.50"))
                assert str(invoice.total) == "0.61 EUR"

            def test_us_invoice_has_no_tax(self):
                invoice = make_invoice(country="US", currency="USD")
                invoice.add_line("Widget", Money("10", "USD"), 3)
                assert invoice.total == Money("30.00", "USD")

            def test_large_invoice(self):
                invoice = make_invoice(country="FR")
                for i in range(400):
                    invoice.add_line(f"Part {i}", Money("1.25"))
                time.sleep(0.15)  # stands in for rendering the PDF preview
                assert invoice.subtotal == Money("500.00")
                assert invoice.total == Money("600.00")
    ''')


# --------------------------------------------------------------------------
# 06
@step("Document basic usage in README")
def _():
    append("README.md", """
        ## Usage

        ```python
        from datetime import date
        from invoicekit.invoice import Invoice
        from invoicekit.money import Money

        invoice = Invoice("2024-0001", "ACME GmbH", "DE", date.today())
        invoice.add_line("Widget", Money("10.00"), 2)
        print(invoice.total)   # 23.80 EUR
        ```

        Modules:

        - `money` — exact decimal money values and allocation
        - `tax` — VAT rates per country
        - `discounts` — percentage, fixed and quantity-tier discounts
        - `inventory` — stock levels and reservations
        - `invoice` — invoices, lines and totals
    """)


# --------------------------------------------------------------------------
# 07
@step("Add CSV export for invoices")
def _():
    write("src/invoicekit/export.py", '''
        """Export invoices for accounting."""
        from __future__ import annotations

        import csv
        import io

        from .invoice import Invoice
        from .money import Money

        CSV_HEADER = ["description", "quantity", "unit_price", "net", "currency"]


        def _fmt(money: Money) -> str:
            return str(money.rounded().amount)


        def invoice_to_csv(invoice: Invoice) -> str:
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\\n")
            writer.writerow(CSV_HEADER)
            for line in invoice.lines:
                writer.writerow(
                    [line.description, line.quantity, _fmt(line.unit_price), _fmt(line.net),
                     invoice.currency]
                )
            writer.writerow(["subtotal", "", "", _fmt(invoice.subtotal), invoice.currency])
            writer.writerow(["tax", "", "", _fmt(invoice.tax_total), invoice.currency])
            writer.writerow(["total", "", "", _fmt(invoice.total), invoice.currency])
            return buf.getvalue()
    ''')
    write("tests/test_export.py", '''
        import csv
        import io
        import time
        from datetime import date

        import pytest

        from invoicekit.export import invoice_to_csv
        from invoicekit.invoice import Invoice
        from invoicekit.money import Money


        @pytest.fixture
        def invoice():
            inv = Invoice("2024-0007", "Bakery Hofmann", "DE", date(2024, 3, 4))
            inv.add_line("Flour 25kg", Money("18.40"), 2)
            inv.add_line("Bolts, M6", Money("0.15"), 12)
            return inv


        def rows(text):
            return list(csv.reader(io.StringIO(text)))


        def test_csv_header(invoice):
            assert invoice_to_csv(invoice).splitlines()[0] == "description,quantity,unit_price,net,currency"


        def test_csv_line_rows(invoice):
            lines = invoice_to_csv(invoice).splitlines()
            assert lines[1] == "Flour 25kg,2,18.40,36.80,EUR"
            assert lines[2] == '"Bolts, M6",12,0.15,1.76,EUR'


        def test_csv_parses_back(invoice):
            parsed = rows(invoice_to_csv(invoice))
            assert [r[0] for r in parsed[1:3]] == ["Flour 25kg", "Bolts, M6"]


        def test_csv_totals(invoice):
            parsed = {r[0]: r[3] for r in rows(invoice_to_csv(invoice))[3:]}
            assert parsed == {"subtotal": "38.56", "tax": "7.33", "total": "45.89"}


        def test_csv_empty_invoice():
            inv = Invoice("2024-0008", "Nobody", "FR", date(2024, 3, 5))
            assert len(rows(invoice_to_csv(inv))) == 4


        def test_large_invoice_export():
            inv = Invoice("2024-0009", "Wholesale SA", "FR", date(2024, 3, 5))
            for i in range(1500):
                inv.add_line(f"Item {i}", Money("2.00"))
            time.sleep(0.2)  # upload to the accounting share is stubbed with a delay
            assert len(rows(invoice_to_csv(inv))) == 1504
    ''')


# --------------------------------------------------------------------------
# 08
@step("Refactor Money rounding into module-level helpers")
def _():
    edit("src/invoicekit/money.py", '''
        class CurrencyMismatch(ValueError):
    ''', '''
        def minor_units(currency: str) -> int:
            """Digits after the decimal point for ``currency``."""
            return MINOR_UNITS[currency]


        def quantum(currency: str) -> Decimal:
            """Smallest representable amount, e.g. ``Decimal('0.01')`` for EUR."""
            return Decimal(1).scaleb(-minor_units(currency))


        def round_amount(amount: Decimal, currency: str) -> Decimal:
            return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


        class CurrencyMismatch(ValueError):
    ''')
    edit("src/invoicekit/money.py", '''
                quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
                return Money(
                    self.amount.quantize(quantum, rounding=ROUND_HALF_UP), self.currency
                )
    ''', '''
                return Money(round_amount(self.amount, self.currency), self.currency)
    ''')
    edit("src/invoicekit/money.py", '''
                quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
                units = int(self.rounded().amount / quantum)
    ''', '''
                step = quantum(self.currency)
                units = int(self.rounded().amount / step)
    ''')
    edit("src/invoicekit/money.py", '''
                return [Money(p * quantum, self.currency) for p in parts]
    ''', '''
                return [Money(p * step, self.currency) for p in parts]
    ''')
    edit("src/invoicekit/money.py", '''
                places = MINOR_UNITS[self.currency]
    ''', '''
                places = minor_units(self.currency)
    ''')


# --------------------------------------------------------------------------
# 09  R1 discounts
@step("Speed up quantity tier lookup with bisect", kind="R1")
def _():
    edit("src/invoicekit/discounts.py", '''
        from dataclasses import dataclass
    ''', '''
        import bisect
        from dataclasses import dataclass
    ''')
    edit("src/invoicekit/discounts.py", '''
        ]


        class InvalidDiscount(ValueError):
    ''', '''
        ]
        _TIER_MINIMUMS = sorted(minimum for minimum, _ in QUANTITY_TIERS)
        _TIER_PERCENTS = dict(QUANTITY_TIERS)


        class InvalidDiscount(ValueError):
    ''')
    edit("src/invoicekit/discounts.py", '''
            for minimum, percent in QUANTITY_TIERS:
                if quantity >= minimum:
                    return percent
            return Decimal(0)
    ''', '''
            index = bisect.bisect_left(_TIER_MINIMUMS, quantity)
            if index == 0:
                return Decimal(0)
            return _TIER_PERCENTS[_TIER_MINIMUMS[index - 1]]
    ''')


# --------------------------------------------------------------------------
# 10
@step("Add low-stock report and cover stock valuation")
def _():
    edit("src/invoicekit/inventory.py", '''
            def value(self) -> Money:
    ''', '''
            def low_stock(self, threshold: int = 5) -> List[Item]:
                """Items whose unreserved quantity is at or below ``threshold``."""
                items = [i for i in self._items.values() if self.available(i.sku) <= threshold]
                return sorted(items, key=lambda i: (self.available(i.sku), i.sku))

            def value(self) -> Money:
    ''')
    edit("tests/test_inventory.py", '''
        def test_bulk_reservation_sweep(clock):
    ''', '''
        def test_stock_value_with_fractional_unit_prices(clock):
            inventory = Inventory(clock=clock)
            inventory.add("WASH-1", "Washer", Money("0.125"), 8)
            assert inventory.value() == Money("1.00")


        def test_value_of_bulk_consumables(clock):
            inventory = Inventory(clock=clock)
            inventory.add("TIE-1", "Cable tie", Money("0.0125"), 1000)
            inventory.add("TAPE-1", "Tape", Money("1.99"), 2)
            assert inventory.value() == Money("16.48")


        def test_low_stock_report(inv):
            inv.add("SKU-3", "Gizmo", Money("5"), 1)
            assert [i.sku for i in inv.low_stock()] == ["SKU-3", "SKU-2"]


        def test_low_stock_counts_reservations(inv):
            inv.reserve("SKU-1", 6)
            assert [i.sku for i in inv.low_stock(threshold=4)] == ["SKU-2", "SKU-1"]


        def test_bulk_reservation_sweep(clock):
    ''')


# --------------------------------------------------------------------------
# 11  fix R1
@step("Fix quantity tier boundaries (bisect_right)", kind="fix R1")
def _():
    edit("src/invoicekit/discounts.py", '''
            index = bisect.bisect_left(_TIER_MINIMUMS, quantity)
    ''', '''
            # bisect_right: a quantity equal to a tier minimum qualifies for that tier
            index = bisect.bisect_right(_TIER_MINIMUMS, quantity)
    ''')
    edit("tests/test_discounts.py", '''
        def test_no_discount_object_below_first_tier():
    ''', '''
        def test_tier_minimums_are_inclusive():
            for minimum in (10, 50, 100):
                assert tier_percent(minimum) > tier_percent(minimum - 1), minimum


        def test_no_discount_object_below_first_tier():
    ''')


# --------------------------------------------------------------------------
# 12
@step("Support reduced VAT rates per product category")
def _():
    edit("src/invoicekit/tax.py", '''
            "US": Decimal("0"),
        }
    ''', '''
            "US": Decimal("0"),
        }

        #: Reduced rates by product category; anything else pays the standard rate.
        REDUCED_RATES = {
            "DE": {"food": Decimal("0.07"), "books": Decimal("0.07")},
            "FR": {"food": Decimal("0.055"), "books": Decimal("0.055"), "medicine": Decimal("0.021")},
            "NL": {"food": Decimal("0.09"), "books": Decimal("0.09")},
            "GB": {"books": Decimal("0"), "children_clothing": Decimal("0")},
        }
    ''')
    edit("src/invoicekit/tax.py", '''
        def rate_for(country: str) -> Decimal:
            try:
                return STANDARD_RATES[country.upper()]
            except KeyError:
                raise UnknownJurisdiction(country) from None


        def tax_on(net: Money, country: str) -> Money:
            return (net * rate_for(country)).rounded()
    ''', '''
        def rate_for(country: str, category: str = "standard") -> Decimal:
            code = country.upper()
            if code not in STANDARD_RATES:
                raise UnknownJurisdiction(country)
            return REDUCED_RATES.get(code, {}).get(category, STANDARD_RATES[code])


        def tax_on(net: Money, country: str, category: str = "standard") -> Money:
            return (net * rate_for(country, category)).rounded()
    ''')
    edit("tests/test_tax.py", '''
        def test_country_codes_are_case_insensitive():
    ''', '''
        @pytest.mark.parametrize(
            "country, category, rate",
            [
                ("DE", "food", "0.07"),
                ("FR", "books", "0.055"),
                ("GB", "books", "0"),
                ("US", "food", "0"),
            ],
        )
        def test_reduced_rates(country, category, rate):
            assert rate_for(country, category) == Decimal(rate)


        def test_unknown_category_pays_standard_rate():
            assert rate_for("DE", "jewellery") == Decimal("0.19")


        def test_country_codes_are_case_insensitive():
    ''')
    edit("src/invoicekit/invoice.py", '''
        from typing import List, Optional, Union
    ''', '''
        from decimal import Decimal
        from typing import Dict, List, Optional, Union
    ''')
    edit("src/invoicekit/invoice.py", '''
            discount: Optional[Discount] = None

            @property
            def list_amount(self) -> Money:
    ''', '''
            discount: Optional[Discount] = None
            tax_category: str = "standard"

            @property
            def list_amount(self) -> Money:
    ''')
    edit("src/invoicekit/invoice.py", '''
                discount: Optional[Discount] = None,
            ) -> LineItem:
    ''', '''
                discount: Optional[Discount] = None,
                tax_category: str = "standard",
            ) -> LineItem:
    ''')
    edit("src/invoicekit/invoice.py", '''
                line = LineItem(description, unit_price, quantity, discount)
    ''', '''
                line = LineItem(description, unit_price, quantity, discount, tax_category)
    ''')
    edit("src/invoicekit/invoice.py", '''
            @property
            def tax_total(self) -> Money:
                return tax.tax_on(self.subtotal, self.country)
    ''', '''
            def tax_breakdown(self) -> Dict[Decimal, Money]:
                """Tax per VAT rate, rounded once on the summed net of each rate."""
                nets: Dict[Decimal, Money] = {}
                for line in self.lines:
                    rate = tax.rate_for(self.country, line.tax_category)
                    nets[rate] = nets.get(rate, Money.zero(self.currency)) + line.net
                return {rate: (net * rate).rounded() for rate, net in sorted(nets.items())}

            @property
            def tax_total(self) -> Money:
                return sum(self.tax_breakdown().values(), Money.zero(self.currency))
    ''')
    edit("tests/test_invoice.py", '''
            def test_large_invoice(self):
    ''', '''
            def test_mixed_rates_breakdown(self):
                invoice = make_invoice()
                invoice.add_line("Bread", Money("3.00"), 5, tax_category="food")
                invoice.add_line("Toaster", Money("40.00"))
                assert invoice.tax_breakdown() == {
                    Decimal("0.07"): Money("1.05"),
                    Decimal("0.19"): Money("7.60"),
                }
                assert invoice.total == Money("63.65")

            def test_large_invoice(self):
    ''')
    edit("tests/test_invoice.py", '''
        from datetime import date
    ''', '''
        from datetime import date
        from decimal import Decimal
    ''')


# --------------------------------------------------------------------------
# 13  R2 money
@step("Use banker's rounding to avoid cumulative bias", kind="R2")
def _():
    edit("src/invoicekit/money.py", '''
        from decimal import ROUND_HALF_UP, Decimal
    ''', '''
        from decimal import ROUND_HALF_EVEN, Decimal
    ''')
    edit("src/invoicekit/money.py", '''
            return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)
    ''', '''
            return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)
    ''')


# --------------------------------------------------------------------------
# 14  fix R2
@step("Revert to half-up rounding required on invoices", kind="fix R2")
def _():
    edit("src/invoicekit/money.py", '''
        from decimal import ROUND_HALF_EVEN, Decimal
    ''', '''
        from decimal import ROUND_HALF_UP, Decimal
    ''')
    edit("src/invoicekit/money.py", '''
        def round_amount(amount: Decimal, currency: str) -> Decimal:
            return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)
    ''', '''
        def round_amount(amount: Decimal, currency: str) -> Decimal:
            # Commercial rounding (half away from zero) is what tax authorities
            # expect on invoices; do not switch to banker's rounding.
            return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)
    ''')
    edit("tests/test_money.py", '''
        def test_jpy_has_no_minor_unit():
    ''', '''
        def test_allocation_of_odd_cent_is_stable():
            assert Money("0.05").allocate([1, 1]) == [Money("0.03"), Money("0.02")]


        def test_jpy_has_no_minor_unit():
    ''')


# --------------------------------------------------------------------------
# 15
@step("Add CI workflow and bump version to 0.2.0")
def _():
    write(".github/workflows/ci.yml", """
        name: ci
        on: [push, pull_request]
        jobs:
          test:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@v5
                with:
                  python-version: "3.11"
              - run: pip install pytest
              - run: python -m pytest -q --junitxml=junit.xml -o junit_family=xunit1
                env:
                  BUILD_NUMBER: ${{ github.run_number }}
              - uses: actions/upload-artifact@v4
                if: always()
                with:
                  name: junit
                  path: junit.xml
    """)
    edit("src/invoicekit/__init__.py", '''
        __version__ = "0.1.0"
    ''', '''
        __version__ = "0.2.0"
    ''')
    edit("pyproject.toml", '''
        version = "0.1.0"
    ''', '''
        version = "0.2.0"
    ''')


# --------------------------------------------------------------------------
# 16
@step("Rename export tests to test_csv_export.py")
def _():
    move("tests/test_export.py", "tests/test_csv_export.py")


# --------------------------------------------------------------------------
# 17
@step("Add JSON export")
def _():
    edit("src/invoicekit/export.py", '''
        import csv
        import io
    ''', '''
        import csv
        import io
        import json
        from typing import Optional
    ''')
    append("src/invoicekit/export.py", '''
        def invoice_to_dict(invoice: Invoice) -> dict:
            return {
                "number": invoice.number,
                "customer": invoice.customer,
                "country": invoice.country,
                "issued": invoice.issued.isoformat(),
                "currency": invoice.currency,
                "lines": [
                    {
                        "description": line.description,
                        "quantity": line.quantity,
                        "unit_price": _fmt(line.unit_price),
                        "net": _fmt(line.net),
                    }
                    for line in invoice.lines
                ],
                "subtotal": _fmt(invoice.subtotal),
                "tax": _fmt(invoice.tax_total),
                "total": _fmt(invoice.total),
            }


        def invoice_to_json(invoice: Invoice, indent: Optional[int] = None) -> str:
            return json.dumps(invoice_to_dict(invoice), sort_keys=True, indent=indent)
    ''')
    write("tests/test_json_export.py", '''
        import json
        from datetime import date

        import pytest

        from invoicekit.export import invoice_to_dict, invoice_to_json
        from invoicekit.invoice import Invoice
        from invoicekit.money import Money


        @pytest.fixture
        def invoice():
            inv = Invoice("2024-0042", "Lindqvist AB", "NL", date(2024, 3, 15))
            inv.add_line("Consulting", Money("95.00"), 2)
            return inv


        def test_json_has_totals(invoice):
            data = invoice_to_dict(invoice)
            assert (data["subtotal"], data["tax"], data["total"]) == ("190.00", "39.90", "229.90")


        def test_json_amounts_are_strings(invoice):
            line = invoice_to_dict(invoice)["lines"][0]
            assert line == {"description": "Consulting", "quantity": 2, "unit_price": "95.00", "net": "190.00"}


        def test_json_roundtrip(invoice):
            assert json.loads(invoice_to_json(invoice, indent=2)) == invoice_to_dict(invoice)


        def test_json_is_stable(invoice):
            assert invoice_to_json(invoice) == (
                '{"country": "NL", "currency": "EUR", "customer": "Lindqvist AB", '
                '"issued": "2024-03-15", "lines": [{"description": "Consulting", '
                '"net": "190.00", "quantity": 2, "unit_price": "95.00"}], '
                '"number": "2024-0042", "subtotal": "190.00", "tax": "39.90", '
                '"total": "229.90"}'
            )
    ''')


# --------------------------------------------------------------------------
# 18  R3 inventory
@step("Index reservations by SKU for faster availability checks", kind="R3")
def _():
    edit("src/invoicekit/inventory.py", '''
        import itertools
        import time
    ''', '''
        import itertools
        import time
        from collections import defaultdict
    ''')
    edit("src/invoicekit/inventory.py", '''
                self._reservations: Dict[int, Reservation] = {}
                self._ids = itertools.count(1)
    ''', '''
                self._reservations: Dict[int, Reservation] = {}
                self._by_sku: Dict[str, Dict[int, Reservation]] = defaultdict(dict)
                self._ids = itertools.count(1)
    ''')
    edit("src/invoicekit/inventory.py", '''
                return [
                    r for r in self._reservations.values()
                    if r.sku == sku and not r.expired(now)
                ]
    ''', '''
                return [r for r in self._by_sku[sku].values() if not r.expired(now)]
    ''')
    edit("src/invoicekit/inventory.py", '''
                self._reservations[rid] = Reservation(rid, sku, quantity, expires)
                return rid
    ''', '''
                reservation = Reservation(rid, sku, quantity, expires)
                self._reservations[rid] = reservation
                self._by_sku[sku][rid] = reservation
                return rid
    ''')
    edit("src/invoicekit/inventory.py", '''
                    raise KeyError(f"no reservation {reservation_id}") from None
    ''', '''
                    raise KeyError(f"no reservation {reservation_id}") from None
                del self._by_sku[res.sku][reservation_id]
    ''')


# --------------------------------------------------------------------------
# 19
@step("Add payment terms and due dates to invoices")
def _():
    edit("src/invoicekit/invoice.py", '''
        from datetime import date
    ''', '''
        from datetime import date, timedelta
    ''')
    edit("src/invoicekit/invoice.py", '''
        Discount = Union[PercentageDiscount, FixedDiscount]
    ''', '''
        Discount = Union[PercentageDiscount, FixedDiscount]

        #: Payment terms and the number of days the customer has to pay.
        PAYMENT_TERMS = {"DUE_ON_RECEIPT": 0, "NET14": 14, "NET30": 30, "NET60": 60}
    ''')
    edit("src/invoicekit/invoice.py", '''
            currency: str = "EUR"
            lines: List[LineItem] = field(default_factory=list)
    ''', '''
            currency: str = "EUR"
            terms: str = "NET30"
            lines: List[LineItem] = field(default_factory=list)

            def __post_init__(self) -> None:
                if self.terms not in PAYMENT_TERMS:
                    raise ValueError(f"unknown payment terms {self.terms!r}")

            @property
            def due_date(self) -> date:
                return self.issued + timedelta(days=PAYMENT_TERMS[self.terms])

            def is_overdue(self, today: date) -> bool:
                return today > self.due_date
    ''')
    append("tests/test_invoice.py", '''
        def test_default_terms_are_net30():
            assert make_invoice().due_date == date(2024, 3, 31)


        def test_net14_due_date():
            assert make_invoice(terms="NET14").due_date == date(2024, 3, 15)


        def test_net30_across_february():
            invoice = Invoice("2024-0002", "ACME GmbH", "DE", date(2024, 1, 31))
            assert invoice.due_date == date(2024, 3, 1)


        def test_due_on_receipt():
            assert make_invoice(terms="DUE_ON_RECEIPT").due_date == date(2024, 3, 1)


        def test_is_overdue():
            invoice = make_invoice()
            assert not invoice.is_overdue(date(2024, 3, 31))
            assert invoice.is_overdue(date(2024, 4, 1))


        def test_unknown_terms_are_rejected():
            with pytest.raises(ValueError, match="payment terms"):
                make_invoice(terms="NET45")
    ''')
    edit("src/invoicekit/export.py", '''
                "issued": invoice.issued.isoformat(),
    ''', '''
                "issued": invoice.issued.isoformat(),
                "due": invoice.due_date.isoformat(),
    ''')
    edit("tests/test_json_export.py", '''
                '{"country": "NL", "currency": "EUR", "customer": "Lindqvist AB", '
                '"issued": "2024-03-15", "lines": [{"description": "Consulting", '
    ''', '''
                '{"country": "NL", "currency": "EUR", "customer": "Lindqvist AB", '
                '"due": "2024-04-14", "issued": "2024-03-15", '
                '"lines": [{"description": "Consulting", '
    ''')


# --------------------------------------------------------------------------
# 20  fix R3
@step("Fix release() leaving reservations in the SKU index", kind="fix R3")
def _():
    edit("src/invoicekit/inventory.py", '''
            def release(self, reservation_id: int) -> None:
                self._reservations.pop(reservation_id, None)
    ''', '''
            def release(self, reservation_id: int) -> None:
                res = self._reservations.pop(reservation_id, None)
                if res is not None:
                    self._by_sku[res.sku].pop(reservation_id, None)
    ''')
    edit("tests/test_inventory.py", '''
        def test_commit_removes_stock(inv):
    ''', '''
        def test_released_stock_can_be_reserved_by_someone_else(inv):
            first = inv.reserve("SKU-2", 3)
            inv.release(first)
            second = inv.reserve("SKU-2", 3)
            inv.commit(second)
            assert inv.get("SKU-2").quantity == 0


        def test_commit_removes_stock(inv):
    ''')


# --------------------------------------------------------------------------
# 21  R4 export
@step("Quote all CSV fields so spreadsheets keep leading zeros", kind="R4")
def _():
    edit("src/invoicekit/export.py", '''
            writer = csv.writer(buf, lineterminator="\\n")
    ''', '''
            writer = csv.writer(buf, lineterminator="\\n", quoting=csv.QUOTE_ALL)
    ''')


# --------------------------------------------------------------------------
# 22  fix R4
@step("Restore minimal CSV quoting expected by the accounting import", kind="fix R4")
def _():
    edit("src/invoicekit/export.py", '''
            writer = csv.writer(buf, lineterminator="\\n", quoting=csv.QUOTE_ALL)
    ''', '''
            # The accounting import rejects quoted numbers; keep minimal quoting.
            writer = csv.writer(buf, lineterminator="\\n", quoting=csv.QUOTE_MINIMAL)
    ''')
    edit("tests/test_csv_export.py", '''
        def test_csv_parses_back(invoice):
    ''', '''
        def test_csv_numbers_are_not_quoted(invoice):
            assert '"' not in invoice_to_csv(invoice).splitlines()[-1]


        def test_csv_parses_back(invoice):
    ''')


# --------------------------------------------------------------------------
# 23
@step("Refactor invoice lines: move discount selection into LineItem")
def _():
    edit("src/invoicekit/invoice.py", '''
            @property
            def net(self) -> Money:
                amount = self.list_amount
                discount = self.discount or quantity_discount(self.quantity)
                if discount is not None:
                    amount = discount.apply(amount)
                return amount.rounded()
    ''', '''
            def effective_discount(self) -> Optional[Discount]:
                """An explicit discount wins over the quantity tier."""
                if self.discount is not None:
                    return self.discount
                return quantity_discount(self.quantity)

            @property
            def net(self) -> Money:
                discount = self.effective_discount()
                amount = self.list_amount if discount is None else discount.apply(self.list_amount)
                return amount.rounded()
    ''')
    edit("src/invoicekit/invoice.py", '''
            @property
            def subtotal(self) -> Money:
                return sum((line.net for line in self.lines), Money.zero(self.currency))
    ''', '''
            def _zero(self) -> Money:
                return Money.zero(self.currency)

            @property
            def subtotal(self) -> Money:
                return sum((line.net for line in self.lines), self._zero())
    ''')
    edit("src/invoicekit/invoice.py", '''
                    nets[rate] = nets.get(rate, Money.zero(self.currency)) + line.net
    ''', '''
                    nets[rate] = nets.get(rate, self._zero()) + line.net
    ''')
    edit("src/invoicekit/invoice.py", '''
                return sum(self.tax_breakdown().values(), Money.zero(self.currency))
    ''', '''
                return sum(self.tax_breakdown().values(), self._zero())
    ''')


# --------------------------------------------------------------------------
# 24  R5 tax
@step("Add reverse charge for intra-EU B2B supplies", kind="R5")
def _():
    edit("src/invoicekit/tax.py", '''
        class UnknownJurisdiction(KeyError):
    ''', '''
        EU_MEMBERS = {"DE", "FR", "NL"}


        class UnknownJurisdiction(KeyError):
    ''')
    edit("src/invoicekit/tax.py", '''
        def rate_for(country: str, category: str = "standard") -> Decimal:
            code = country.upper()
            if code not in STANDARD_RATES:
                raise UnknownJurisdiction(country)
            return REDUCED_RATES.get(code, {}).get(category, STANDARD_RATES[code])
    ''', '''
        def is_reverse_charge(country: str, seller_country: Optional[str], buyer_vat_id: Optional[str]) -> bool:
            """B2B supplies between two different EU members shift VAT to the buyer."""
            if not buyer_vat_id or not seller_country:
                return False
            seller = seller_country.upper()
            return country in EU_MEMBERS and seller in EU_MEMBERS and seller != country


        def rate_for(
            country: str,
            category: str = "standard",
            *,
            seller_country: Optional[str] = None,
            buyer_vat_id: Optional[str] = None,
        ) -> Decimal:
            code = country.upper()
            if code not in STANDARD_RATES:
                raise UnknownJurisdiction(country)
            if is_reverse_charge(code, seller_country, buyer_vat_id):
                return Decimal(0)
            reduced = REDUCED_RATES[code]
            return reduced.get(category, STANDARD_RATES[code])
    ''')
    edit("src/invoicekit/tax.py", '''
        from decimal import Decimal
    ''', '''
        from decimal import Decimal
        from typing import Optional
    ''')
    edit("tests/test_tax.py", '''
        def test_country_codes_are_case_insensitive():
    ''', '''
        def test_reverse_charge_between_eu_businesses():
            assert rate_for("FR", seller_country="DE", buyer_vat_id="FR40303265045") == Decimal(0)


        def test_no_reverse_charge_for_domestic_or_consumer_sales():
            assert rate_for("DE", seller_country="DE", buyer_vat_id="DE811569869") == Decimal("0.19")
            assert rate_for("FR", seller_country="DE") == Decimal("0.20")


        def test_country_codes_are_case_insensitive():
    ''')


# --------------------------------------------------------------------------
# 25  fix R5
@step("Fix VAT lookup for countries without reduced rates", kind="fix R5")
def _():
    edit("src/invoicekit/tax.py", '''
            reduced = REDUCED_RATES[code]
    ''', '''
            reduced = REDUCED_RATES.get(code, {})
    ''')
    edit("tests/test_tax.py", '''
        def test_unknown_category_pays_standard_rate():
    ''', '''
        def test_country_without_reduced_rates_uses_standard_rate():
            assert "US" not in REDUCED_RATES
            assert rate_for("US", "books") == Decimal("0")


        def test_unknown_category_pays_standard_rate():
    ''')
    edit("tests/test_tax.py", '''
        from invoicekit.tax import (
            STANDARD_RATES,
    ''', '''
        from invoicekit.tax import (
            REDUCED_RATES,
            STANDARD_RATES,
    ''')


# --------------------------------------------------------------------------
# 26
@step("Add credit notes")
def _():
    edit("src/invoicekit/invoice.py", '''
            currency: str = "EUR"
            terms: str = "NET30"
            lines: List[LineItem] = field(default_factory=list)
    ''', '''
            currency: str = "EUR"
            terms: str = "NET30"
            lines: List[LineItem] = field(default_factory=list)
            credits: Optional[str] = None
    ''')
    append("src/invoicekit/invoice.py", '''
        def credit_note(invoice: Invoice, number: str, issued: Optional[date] = None) -> Invoice:
            """A credit note cancelling ``invoice`` in full."""
            note = Invoice(
                number=number,
                customer=invoice.customer,
                country=invoice.country,
                issued=issued or invoice.issued,
                currency=invoice.currency,
                terms="DUE_ON_RECEIPT",
                credits=invoice.number,
            )
            for line in invoice.lines:
                note.lines.append(
                    LineItem(f"Credit: {line.description}", -line.net, 1, None, line.tax_category)
                )
            return note
    ''')
    append("tests/test_invoice.py", '''
        def test_credit_note_cancels_invoice():
            invoice = make_invoice()
            invoice.add_line("Widget", Money("10.00"), 12)
            invoice.add_line("Bread", Money("2.35"), 3, tax_category="food")
            note = credit_note(invoice, "CN-2024-0001")
            assert note.total == -invoice.total
            assert invoice.total + note.total == Money("0")


        def test_credit_note_references_original():
            note = credit_note(make_invoice(), "CN-2024-0002", issued=date(2024, 3, 20))
            assert note.credits == "2024-0001"
            assert note.due_date == date(2024, 3, 20)
    ''')
    edit("tests/test_invoice.py", '''
        from invoicekit.invoice import Invoice
    ''', '''
        from invoicekit.invoice import Invoice, credit_note
    ''')


# --------------------------------------------------------------------------
# 27  R6 money
@step("Default to two minor units for currencies missing from the table", kind="R6")
def _():
    edit("src/invoicekit/money.py", '''
            """Digits after the decimal point for ``currency``."""
            return MINOR_UNITS[currency]
    ''', '''
            """Digits after the decimal point for ``currency`` (two if unlisted)."""
            return MINOR_UNITS.get(currency) or 2
    ''')


# --------------------------------------------------------------------------
# 28
@step("Add currency conversion with exchange rate tables")
def _():
    edit("src/invoicekit/money.py", '''
        from typing import Iterable, List, Union
    ''', '''
        from typing import Dict, Iterable, List, Optional, Union
    ''')
    append("src/invoicekit/money.py", '''
        class ExchangeRates:
            """Conversion rates quoted against a base currency (units per 1 base)."""

            def __init__(self, base: str = "EUR", rates: Optional[Dict[str, Number]] = None) -> None:
                self.base = base
                self._rates: Dict[str, Decimal] = {base: Decimal(1)}
                for currency, rate in (rates or {}).items():
                    self.set(currency, rate)

            def __repr__(self) -> str:
                return f"ExchangeRates(base={self.base!r}, currencies={sorted(self._rates)})"

            def set(self, currency: str, rate: Number) -> None:
                if currency not in MINOR_UNITS:
                    raise ValueError(f"unknown currency {currency!r}")
                rate = Decimal(rate)
                if rate <= 0:
                    raise ValueError("exchange rates must be positive")
                self._rates[currency] = rate

            def rate(self, source: str, target: str) -> Decimal:
                try:
                    return self._rates[target] / self._rates[source]
                except KeyError as exc:
                    raise LookupError(f"no exchange rate for {exc.args[0]}") from None

            def convert(self, money: Money, target: str) -> Money:
                if money.currency == target:
                    return money
                return Money(money.amount * self.rate(money.currency, target), target).rounded()
    ''')
    write("tests/test_conversion.py", '''
        import time

        import pytest

        from invoicekit.money import ExchangeRates, Money


        @pytest.fixture(scope="module")
        def rates():
            time.sleep(0.08)  # stands in for fetching the daily reference rates
            return ExchangeRates(
                "EUR", {"USD": "1.0850", "GBP": "0.8550", "JPY": "162.40", "CHF": "0.9520"}
            )


        @pytest.mark.parametrize(
            "amount, target, expected",
            [
                (Money("100"), "USD", Money("108.50", "USD")),
                (Money("99.99"), "JPY", Money("16238", "JPY")),
                (Money("1000", "JPY"), "EUR", Money("6.16")),
            ],
        )
        def test_convert(rates, amount, target, expected):
            assert rates.convert(amount, target) == expected


        def test_same_currency_is_identity(rates):
            amount = Money("12.34")
            assert rates.convert(amount, "EUR") is amount


        def test_missing_rate_raises():
            with pytest.raises(LookupError):
                ExchangeRates("EUR", {"USD": "1.1"}).convert(Money("1"), "GBP")


        def test_rates_must_be_positive():
            for rate in ("0", "-1.2"):
                with pytest.raises(ValueError):
                    ExchangeRates("EUR", {"USD": rate})
    ''')


# --------------------------------------------------------------------------
# 29  fix R6
@step("Keep zero-decimal currencies at zero minor units", kind="fix R6")
def _():
    edit("src/invoicekit/money.py", '''
            """Digits after the decimal point for ``currency`` (two if unlisted)."""
            return MINOR_UNITS.get(currency) or 2
    ''', '''
            """Digits after the decimal point for ``currency`` (two if unlisted)."""
            # ``or 2`` would turn JPY's 0 into 2; only fall back when unlisted.
            return MINOR_UNITS.get(currency, 2)
    ''')
    edit("tests/test_money.py", '''
        def test_jpy_has_no_minor_unit():
    ''', '''
        def test_zero_decimal_currency_quantum():
            from invoicekit.money import quantum

            assert quantum("JPY") == 1


        def test_jpy_has_no_minor_unit():
    ''')


# --------------------------------------------------------------------------
# 30  R7 discounts
@step("Let fixed discounts apply to amounts in other currencies", kind="R7")
def _():
    edit("src/invoicekit/discounts.py", '''
        from .money import Money
    ''', '''
        from .money import ExchangeRates, Money
    ''')
    edit("src/invoicekit/discounts.py", '''
            def apply(self, amount: Money) -> Money:
                result = amount - self.value
                if result.amount < 0:
                    return Money.zero(amount.currency)
                return result
    ''', '''
            def apply(self, amount: Money, rates: Optional[ExchangeRates] = None) -> Money:
                value = self.value
                if rates is not None and value.currency != amount.currency:
                    value = rates.convert(value, amount.currency)
                return amount - value
    ''')
    edit("tests/test_discounts.py", '''
        def test_fixed_discount_currency_must_match():
    ''', '''
        def test_fixed_discount_converts_with_rates():
            rates = ExchangeRates("EUR", {"USD": "1.25"})
            assert FixedDiscount(Money("5", "USD")).apply(Money("12.50"), rates) == Money("8.50")


        def test_fixed_discount_currency_must_match():
    ''')
    edit("tests/test_discounts.py", '''
        from invoicekit.money import CurrencyMismatch, Money
    ''', '''
        from invoicekit.money import CurrencyMismatch, ExchangeRates, Money
    ''')


# --------------------------------------------------------------------------
# 31  fix R7
@step("Clamp fixed discounts at zero again", kind="fix R7")
def _():
    edit("src/invoicekit/discounts.py", '''
                    value = rates.convert(value, amount.currency)
                return amount - value
    ''', '''
                    value = rates.convert(value, amount.currency)
                result = amount - value
                if result.amount < 0:
                    return Money.zero(amount.currency)
                return result
    ''')


# --------------------------------------------------------------------------
# 32
@step("Support stacking discounts with a 50% cap")
def _():
    edit("src/invoicekit/discounts.py", '''
        from typing import Optional
    ''', '''
        from typing import Iterable, Optional, Union
    ''')
    edit("src/invoicekit/discounts.py", '''
        class InvalidDiscount(ValueError):
    ''', '''
        #: Combined discounts may never take more than this share off a line.
        MAX_COMBINED_PERCENT = Decimal("50")


        class InvalidDiscount(ValueError):
    ''')
    append("src/invoicekit/discounts.py", '''
        def apply_all(
            amount: Money, discounts: Iterable[Union[PercentageDiscount, FixedDiscount]]
        ) -> Money:
            """Apply discounts in order, capping the combined reduction."""
            floor = amount * ((100 - MAX_COMBINED_PERCENT) / Decimal(100))
            result = amount
            for discount in discounts:
                result = discount.apply(result)
            return max(result, floor)
    ''')
    append("tests/test_discounts.py", '''
        def test_stacked_percentages_compound():
            result = apply_all(Money("100"), [PercentageDiscount("10"), PercentageDiscount("10")])
            assert result == Money("81")


        def test_stacked_discounts_are_capped():
            result = apply_all(Money("100"), [PercentageDiscount("40"), FixedDiscount(Money("30"))])
            assert result == Money("50")


        def test_stacking_nothing_is_identity():
            assert apply_all(Money("42"), []) == Money("42")
    ''')
    edit("tests/test_discounts.py", '''
            PercentageDiscount,
            quantity_discount,
    ''', '''
            PercentageDiscount,
            apply_all,
            quantity_discount,
    ''')


# --------------------------------------------------------------------------
# 33  R8 invoice
@step("Treat NET30 as one calendar month", kind="R8")
def _():
    edit("src/invoicekit/invoice.py", '''
            @property
            def due_date(self) -> date:
                return self.issued + timedelta(days=PAYMENT_TERMS[self.terms])
    ''', '''
            @property
            def due_date(self) -> date:
                days = PAYMENT_TERMS[self.terms]
                if days == 30:
                    # most of our contracts say "payable within one month"
                    month = self.issued.month % 12 + 1
                    year = self.issued.year + (self.issued.month == 12)
                    return self.issued.replace(year=year, month=month)
                return self.issued + timedelta(days=days)
    ''')


# --------------------------------------------------------------------------
# 34
@step("Add changelog, update README, bump version to 0.3.0")
def _():
    write("CHANGELOG.md", """
        # Changelog

        ## 0.3.0
        - Credit notes
        - Currency conversion (`ExchangeRates`)
        - Stacked discounts with a 50% cap
        - Reverse charge for intra-EU B2B supplies

        ## 0.2.0
        - Reduced VAT rates per product category
        - Payment terms and due dates
        - JSON export

        ## 0.1.0
        - Money, tax, discounts, inventory, invoices, CSV export
    """)
    append("README.md", """
        - `export` — CSV and JSON export for the accounting system

        See CHANGELOG.md for release notes.
    """)
    edit("src/invoicekit/__init__.py", '''
        __version__ = "0.2.0"
    ''', '''
        __version__ = "0.3.0"
    ''')
    edit("pyproject.toml", '''
        version = "0.2.0"
    ''', '''
        version = "0.3.0"
    ''')


# --------------------------------------------------------------------------
# 35  fix R8
@step("Count NET30 in days again; calendar months broke Jan 31", kind="fix R8")
def _():
    edit("src/invoicekit/invoice.py", '''
            @property
            def due_date(self) -> date:
                days = PAYMENT_TERMS[self.terms]
                if days == 30:
                    # most of our contracts say "payable within one month"
                    month = self.issued.month % 12 + 1
                    year = self.issued.year + (self.issued.month == 12)
                    return self.issued.replace(year=year, month=month)
                return self.issued + timedelta(days=days)
    ''', '''
            @property
            def due_date(self) -> date:
                # Terms are always counted in calendar days (see contract template §4).
                return self.issued + timedelta(days=PAYMENT_TERMS[self.terms])
    ''')
    append("tests/test_invoice.py", '''
        def test_net30_counts_calendar_days():
            for issued, due in [
                (date(2024, 12, 15), date(2025, 1, 14)),
                (date(2023, 1, 31), date(2023, 3, 2)),
            ]:
                assert Invoice("2024-0003", "ACME GmbH", "DE", issued).due_date == due
    ''')


# --------------------------------------------------------------------------
# 36  R9 inventory
@step("Compute stock valuation in integer cents", kind="R9")
def _():
    edit("src/invoicekit/inventory.py", '''
            def value(self) -> Money:
                total = Money.zero()
                for item in self._items.values():
                    total += item.unit_price * item.quantity
                return total.rounded()
    ''', '''
            def value(self) -> Money:
                # integer cents keep the running total exact and fast
                cents = sum(
                    int(item.unit_price.amount * 100) * item.quantity
                    for item in self._items.values()
                )
                return Money(Decimal(cents) / 100).rounded()
    ''')
    edit("src/invoicekit/inventory.py", '''
        from dataclasses import dataclass
    ''', '''
        from dataclasses import dataclass
        from decimal import Decimal
    ''')


# --------------------------------------------------------------------------
# 37  fix R9
@step("Value stock on exact amounts; cents truncated sub-cent prices", kind="fix R9")
def _():
    edit("src/invoicekit/inventory.py", '''
            def value(self) -> Money:
                # integer cents keep the running total exact and fast
                cents = sum(
                    int(item.unit_price.amount * 100) * item.quantity
                    for item in self._items.values()
                )
                return Money(Decimal(cents) / 100).rounded()
    ''', '''
            def value(self) -> Money:
                # unit prices may carry sub-cent digits; round only the total
                total = sum(
                    (item.unit_price.amount * item.quantity for item in self._items.values()),
                    Decimal(0),
                )
                return Money(total).rounded()
    ''')


# --------------------------------------------------------------------------
# 38
@step("Add invoice summary export")
def _():
    edit("src/invoicekit/export.py", '''
        from typing import Optional
    ''', '''
        from typing import Dict, Iterable, Optional
    ''')
    append("src/invoicekit/export.py", '''
        def summarize(invoices: Iterable[Invoice]) -> dict:
            """Count and gross totals per currency, for the monthly report."""
            count = 0
            totals: Dict[str, Money] = {}
            for invoice in invoices:
                count += 1
                totals[invoice.currency] = totals.get(invoice.currency, Money.zero(invoice.currency)) + invoice.total
            return {"count": count, "totals": {c: _fmt(m) for c, m in sorted(totals.items())}}
    ''')
    append("tests/test_json_export.py", '''
        def test_summary_totals_per_currency(invoice):
            other = Invoice("2024-0043", "Acme Inc", "US", date(2024, 3, 16), currency="USD")
            other.add_line("Widget", Money("5", "USD"), 4)
            assert summarize([invoice, other, invoice]) == {
                "count": 3,
                "totals": {"EUR": "459.80", "USD": "20.00"},
            }


        def test_summary_of_nothing():
            assert summarize([]) == {"count": 0, "totals": {}}
    ''')
    edit("tests/test_json_export.py", '''
        from invoicekit.export import invoice_to_dict, invoice_to_json
    ''', '''
        from invoicekit.export import invoice_to_dict, invoice_to_json, summarize
    ''')


# --------------------------------------------------------------------------
# 39  R10 invoice
@step("Round VAT per line to match printed line totals", kind="R10")
def _():
    edit("src/invoicekit/invoice.py", '''
            def tax_breakdown(self) -> Dict[Decimal, Money]:
                """Tax per VAT rate, rounded once on the summed net of each rate."""
                nets: Dict[Decimal, Money] = {}
                for line in self.lines:
                    rate = tax.rate_for(self.country, line.tax_category)
                    nets[rate] = nets.get(rate, self._zero()) + line.net
                return {rate: (net * rate).rounded() for rate, net in sorted(nets.items())}
    ''', '''
            def tax_breakdown(self) -> Dict[Decimal, Money]:
                """Tax per VAT rate, summed from the per-line tax amounts."""
                taxes: Dict[Decimal, Money] = {}
                for line in self.lines:
                    rate = tax.rate_for(self.country, line.tax_category)
                    taxes[rate] = taxes.get(rate, self._zero()) + (line.net * rate).rounded()
                return dict(sorted(taxes.items()))
    ''')


# --------------------------------------------------------------------------
# 40  fix R10
@step("Round VAT once per rate again (per-line rounding overstated tax)", kind="fix R10")
def _():
    edit("src/invoicekit/invoice.py", '''
            def tax_breakdown(self) -> Dict[Decimal, Money]:
                """Tax per VAT rate, summed from the per-line tax amounts."""
                taxes: Dict[Decimal, Money] = {}
                for line in self.lines:
                    rate = tax.rate_for(self.country, line.tax_category)
                    taxes[rate] = taxes.get(rate, self._zero()) + (line.net * rate).rounded()
                return dict(sorted(taxes.items()))
    ''', '''
            def tax_breakdown(self) -> Dict[Decimal, Money]:
                """Tax per VAT rate, rounded once on the summed net of each rate.

                Rounding per line would let rounding errors add up across lines.
                """
                nets: Dict[Decimal, Money] = {}
                for line in self.lines:
                    rate = tax.rate_for(self.country, line.tax_category)
                    nets[rate] = nets.get(rate, self._zero()) + line.net
                return {rate: (net * rate).rounded() for rate, net in sorted(nets.items())}
    ''')
    edit("tests/test_invoice.py", '''
            def test_large_invoice(self):
    ''', '''
            def test_many_small_lines_do_not_accumulate_rounding(self):
                invoice = make_invoice()
                for _ in range(10):
                    invoice.add_line("Sticker", Money("0.13"))
                assert invoice.tax_total == Money("0.25")

            def test_large_invoice(self):
    ''')


# ==========================================================================
# driver

REGRESSIONS = {
    "R1": "discounts.py: bisect_left makes tier minimums (10/50/100) fall into the lower tier",
    "R2": "money.py: ROUND_HALF_EVEN instead of ROUND_HALF_UP",
    "R3": "inventory.py: release() leaves the reservation in the new per-SKU index",
    "R4": "export.py: csv.QUOTE_ALL changes the exact CSV text",
    "R5": "tax.py: REDUCED_RATES[code] raises KeyError for countries without reduced rates (US)",
    "R6": "money.py: `MINOR_UNITS.get(c) or 2` gives JPY two decimals",
    "R7": "discounts.py: FixedDiscount.apply no longer clamps at zero",
    "R8": "invoice.py: NET30 computed as one calendar month",
    "R9": "inventory.py: stock value truncates sub-cent unit prices",
    "R10": "invoice.py: VAT rounded per line instead of once per rate",
}


def parse_junit(path):
    """Return (tests, [failed nodeids]) from an xunit1 report."""
    import xml.etree.ElementTree as ET

    root = ET.parse(path).getroot()
    failed, total = [], 0
    for case in root.iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            cls = case.get("classname")
            module = case.get("file")
            prefix = module[:-3].replace("/", ".")
            rest = cls[len(prefix):].lstrip(".")
            nodeid = module + ("::" + rest if rest else "") + "::" + case.get("name")
            failed.append(nodeid)
    return total, failed


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    if os.path.exists(REPO) and os.listdir(REPO):
        raise SystemExit(f"{REPO} exists and is not empty")
    os.makedirs(REPO, exist_ok=True)
    if os.path.isdir(BUILDS_DIR):
        shutil.rmtree(BUILDS_DIR)
    os.makedirs(BUILDS_DIR)
    git("init", "-q", "-b", "main")

    base = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)
    records = []
    active = set()
    for n, (message, kind, fn) in enumerate(STEPS, start=1):
        fn()
        git("add", "-A")
        when = base + timedelta(hours=5 * n + (n * 7) % 11, minutes=(n * 13) % 60)
        name, email = AUTHORS[n % len(AUTHORS)]
        env = dict(BASE_ENV,
                   GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
                   GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
                   GIT_AUTHOR_DATE=when.isoformat(), GIT_COMMITTER_DATE=when.isoformat())
        git("commit", "-q", "--no-verify", "-m", message, env=env)
        sha = git("rev-parse", "HEAD", capture=True).strip()
        if n == 1:
            changed = git("diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "HEAD",
                          capture=True).split()
        else:
            changed = git("diff", "--name-only", "HEAD~1", "HEAD", capture=True).split()

        build = f"{n:02d}"
        out_dir = os.path.join(BUILDS_DIR, build)
        os.makedirs(out_dir)
        raw = os.path.join(out_dir, "junit.raw.xml")
        env = dict(BASE_ENV, BUILD_NUMBER=str(n))
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", f"--junitxml={raw}", "-o", "junit_family=xunit1"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with open(raw, encoding="utf-8") as fh:
            xml = fh.read()
        os.remove(raw)
        xml = re.sub(r' (hostname|timestamp)="[^"]*"', "", xml)
        with open(os.path.join(out_dir, "junit.xml"), "w", encoding="utf-8") as fh:
            fh.write(xml)
        with open(os.path.join(out_dir, "changed.txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(f"{p}\n" for p in changed))
        with open(os.path.join(out_dir, "meta.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"commit={sha}\nbranch=main\nmessage={message}\n")

        if kind.startswith("R"):
            active.add(kind)
        elif kind.startswith("fix "):
            active.discard(kind[4:])
        total, failed = parse_junit(os.path.join(out_dir, "junit.xml"))
        records.append(dict(build=build, sha=sha, message=message, kind=kind, changed=changed,
                            total=total, failed=failed, active=sorted(active, key=lambda r: int(r[1:]))))
        print(f"build {build}: {total} tests, {len(failed)} failed  {message}", file=sys.stderr)

    write_rust(records)
    write_readme(records)


def write_rust(records):
    lines = [
        "//! Generated by examples/demo/generate.sh — do not edit.",
        "pub struct DemoBuild { pub id: &'static str, pub commit: &'static str, "
        "pub message: &'static str, pub changed_files: &'static [&'static str], "
        "pub junit: &'static str }",
        "pub const BUILDS: &[DemoBuild] = &[",
    ]
    for r in records:
        files = ", ".join(rust_str(p) for p in r["changed"])
        lines.append(
            f"    DemoBuild {{ id: {rust_str(r['build'])}, commit: {rust_str(r['sha'])}, "
            f"message: {rust_str(r['message'])}, changed_files: &[{files}], "
            f"junit: include_str!(\"../../examples/demo/builds/{r['build']}/junit.xml\") }},"
        )
    lines.append("];")
    os.makedirs(os.path.dirname(RUST_OUT), exist_ok=True)
    with open(RUST_OUT, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def write_readme(records):
    flaky_builds = [r["build"] for r in records if FLAKY in r["failed"]]
    out = []
    out.append(T("""
        # fedtest demo data

        `fedtest demo` replays these 40 builds. They are real: every `builds/NN/junit.xml`
        was written by pytest while running the real test suite of a small sample
        project, `invoicekit`, at one commit of its history. Nothing in the reports is
        hand-edited except that the `hostname` and `timestamp` attributes of
        `<testsuite>` are stripped so that regenerating the data gives small diffs
        (durations in `time=` still vary from run to run).

        ## The sample project

        `invoicekit` is a tiny invoicing/inventory library (Python, `src/` layout,
        tested with pytest):

        | module | what it does | tests |
        |---|---|---|
        | `src/invoicekit/money.py` | `Money` (exact Decimal amounts, rounding, allocation), `ExchangeRates` | `tests/test_money.py`, `tests/test_conversion.py` |
        | `src/invoicekit/tax.py` | VAT rates per country and category, reverse charge | `tests/test_tax.py` |
        | `src/invoicekit/discounts.py` | percentage/fixed/quantity-tier discounts, stacking | `tests/test_discounts.py` |
        | `src/invoicekit/inventory.py` | stock levels, reservations with TTL, valuation | `tests/test_inventory.py` |
        | `src/invoicekit/invoice.py` | invoices, lines, tax breakdown, due dates, credit notes | `tests/test_invoice.py` (has the `TestInvoice` class) |
        | `src/invoicekit/export.py` | CSV / JSON / summary export | `tests/test_csv_export.py` (was `tests/test_export.py` until build 16), `tests/test_json_export.py` |

        Tests cross module boundaries the way real ones do: invoice tests also run
        money, tax and discount code; export tests run invoice code. A few tests sleep
        (0.08–0.25 s) to stand in for slow I/O, so durations are realistic and varied.

        ## How the builds were made

        `generate.sh` (which embeds the whole sample project and its history) creates
        a fresh git repository, then for each of 40 steps edits the sources, commits
        (fixed authors and dates, so commit ids are reproducible), and runs

            BUILD_NUMBER=<n> python -m pytest -q --junitxml=junit.xml -o junit_family=xunit1

        It stores `junit.xml`, `changed.txt` (`git diff --name-only HEAD~1 HEAD`;
        for build 01 all files of the root commit; git's rename detection means the
        rename in build 16 lists only the new path) and `meta.txt`
        (`commit=`, `branch=main`, `message=`), and writes `src/demo/builds.rs`.
        The sample project's `pyproject.toml` sets `addopts = "--tb=short"`, so the
        failure texts are short tracebacks. Regenerate with
        `examples/demo/generate.sh` (needs git, python3 and pytest; set `DEMO_SRC=dir`
        to keep the sample repository).

        ## Ground truth

        ### The flaky test

        `tests/test_inventory.py::test_reservation_survives_checkout_latency`
        (from build 03 on) reserves an item for 40 ms, sleeps for a simulated payment
        gateway latency (exponential, mean 21 ms, about 15 % above 40 ms) and then
        commits the reservation. The latency is drawn from `random.Random("build-<BUILD_NUMBER>")`,
        so a build is reproducible; the test really does time out against the monotonic clock.
        It has nothing to do with the changes in a build.
    """))
    runs = sum(1 for r in records if int(r["build"]) >= 3)
    out.append(f"It failed in {len(flaky_builds)} of its {runs} runs, in builds: "
               f"{', '.join(flaky_builds) or 'none'}.\n")
    out.append("\n" + T("""
        ### Regressions

        Ten commits introduce a real bug in one source module; a later commit fixes it.
        While a bug is present, the tests that exercise the broken code fail (not every
        test of the module).

        | id | introduced | fixed | bug |
        |---|---|---|---|
    """))
    intro = {r["kind"]: r["build"] for r in records if r["kind"].startswith("R")}
    fixed = {r["kind"][4:]: r["build"] for r in records if r["kind"].startswith("fix ")}
    for rid, text in REGRESSIONS.items():
        out.append(f"| {rid} | {intro[rid]} | {fixed[rid]} | {text} |\n")
    out.append("\n" + T("""
        ### Every build

        `cause` says why the failures happened: a regression that is active in that
        build, and/or the flaky test.

        | build | commit message | changed files | tests | failed | cause | failing tests |
        |---|---|---|---|---|---|---|
    """))
    for r in records:
        causes = list(r["active"])
        if FLAKY in r["failed"]:
            causes.append("flaky")
        if not r["failed"]:
            causes = []
        changed = "<br>".join(f"`{p}`" for p in r["changed"]) if len(r["changed"]) <= 6 else \
            f"{len(r['changed'])} files (initial commit)"
        failing = "<br>".join(f"`{t}`" for t in r["failed"])
        out.append(
            f"| {r['build']} | {r['message']} | {changed} | {r['total']} | {len(r['failed'])} | "
            f"{', '.join(causes)} | {failing} |\n"
        )
    n_failing = sum(1 for r in records if r["failed"])
    out.append(f"\n{n_failing} of {len(records)} builds have at least one failure.\n")
    with open(os.path.join(DEMO, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("".join(out))


if __name__ == "__main__":
    main()
PY

"$PYTHON" "$TMP/driver.py" "$REPO" "$HERE" "$ROOT/src/demo/builds.rs"
# The project's sources at every build, for the demo's symbol-level change analysis (issue 15):
# a git bundle of its history is the compact form (the builds' commits, deltified).
git -C "$REPO" bundle create "$HERE/invoicekit.bundle" --all 2>/dev/null
echo "generate.sh: wrote $HERE/builds, $HERE/README.md, $HERE/invoicekit.bundle and $ROOT/src/demo/builds.rs" >&2
