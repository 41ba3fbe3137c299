"""What each numeric RequestLog column can hold, read from the model fields.

One table for validation, the LiteLLM and import mappings and pricing: a value is checked
against its column AFTER it is rounded or quantized, so "999999999999.9999999999999" (which
rounds to 10^12 and overflows numeric(24, 12)) is refused by name instead of failing the
batch. The integer ranges are Django's backend-independent ones, so SQLite (which would
store anything) refuses exactly what PostgreSQL would. A decimal must also stay below its
limit as SQLite gives it back (a double, read with 15 significant digits): 999999999999.9999
could be stored there but never read (Django's converter fails on the 10^12 it reads), so
it is refused on every backend too. The lower bound is the contract's:
counts, costs and latencies are never negative.
"""

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from django.db import models
from django.db.backends.base.operations import BaseDatabaseOperations

from logs.models import RequestLog

# How Django reads a numeric back from SQLite (a double, 15 significant digits).
_as_sqlite_reads_float = Context(prec=15).create_decimal_from_float


def _as_sqlite_reads(value: Decimal) -> Decimal:
    return _as_sqlite_reads_float(float(value))


class OutOfRange(ValueError):
    pass


@dataclass(frozen=True)
class IntBound:
    minimum: int
    maximum: int

    def check(self, value: int) -> int:
        if value < self.minimum:
            raise OutOfRange(f"Must be {self.minimum} or more.")
        if value > self.maximum:
            raise OutOfRange(f"Must be at most {self.maximum}.")
        return value


@dataclass(frozen=True)
class DecimalBound:
    max_digits: int
    decimal_places: int

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimal_places)

    @property
    def limit(self) -> Decimal:
        """The smallest value the column cannot hold (10^(digits - places))."""
        return Decimal(10) ** (self.max_digits - self.decimal_places)

    def quantize(self, value: Decimal) -> Decimal:
        """`value` rounded half-up to the column's places, if the result fits the column."""
        if not value.is_finite():
            raise OutOfRange("Must be a finite number.")
        if value < 0:
            raise OutOfRange("Must be 0 or more.")
        if value >= self.limit:  # checked first: quantizing 1e999 would itself fail
            raise OutOfRange(f"Must be less than {self.limit}.")
        if not value:
            return Decimal(0).quantize(self.quantum)  # no "-0"
        try:
            rounded = value.quantize(self.quantum, rounding=ROUND_HALF_UP, context=Context(prec=self.max_digits + 2))
        except InvalidOperation as exc:
            raise OutOfRange(f"Must be less than {self.limit}.") from exc
        if rounded >= self.limit or _as_sqlite_reads(rounded) >= self.limit:
            raise OutOfRange(f"Must be less than {self.limit} after rounding to {self.decimal_places} places.")
        return rounded


def _bound(field: models.Field) -> IntBound | DecimalBound | None:
    if isinstance(field, models.DecimalField):
        return DecimalBound(field.max_digits, field.decimal_places)
    low_high = BaseDatabaseOperations.integer_field_ranges.get(field.get_internal_type())
    if low_high is None or isinstance(field, (models.AutoField, models.ForeignKey)):
        return None
    return IntBound(max(0, low_high[0]), low_high[1])


# {column name: bound} for every numeric column of the log table.
BOUNDS: dict[str, IntBound | DecimalBound] = {
    field.name: bound for field in RequestLog._meta.concrete_fields if (bound := _bound(field)) is not None
}
COST = BOUNDS["cost"]
LATENCY = BOUNDS["latency_ms"]


def latency_ms(seconds: float) -> int | None:
    """round(seconds x 1000) when that is a latency the column holds; None otherwise
    (negative, NaN, infinite, beyond the column)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    ms = seconds * 1000
    if not math.isfinite(ms) or ms < 0:
        return None
    ms = round(ms)
    return ms if LATENCY.minimum <= ms <= LATENCY.maximum else None
