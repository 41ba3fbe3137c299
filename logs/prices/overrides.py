"""Writes of an account's own prices (ModelPrice rows with `account` set), which the owner
sets on /pricing/ for a model the list does not price (a custom or fine-tuned model) or
prices differently for them. Ingest's PriceBook prefers them over the list price.

A change is a new row from now on, never an edit in place: records already priced keep
pointing at the row that computed their cost. An account's first price for a model starts
at PRICE_FLOOR, like a list price, so the next records are priced by it whatever their
timestamp (a backfill too). Each write is in the account's access log.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from console.audit import Actor, record_event
from console.models import Account, AuditAction
from logs.models import PRICE_FLOOR, MatchType, ModelPrice, PriceSource

# ModelPrice's columns: 20 digits, 10 after the point.
MAX_UNIT_PRICE = Decimal("1000000")


def _unit(value, name: str, *, required: bool = True) -> Decimal | None:
    if value in (None, ""):
        if required:
            raise ValidationError({name: "Enter a price in USD per 1 million tokens."})
        return None
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError as exc:
        raise ValidationError({name: f"{value!r} is not a number."}) from exc
    if not amount.is_finite() or amount < 0:
        raise ValidationError({name: "A price is a number of 0 or more."})
    if amount > MAX_UNIT_PRICE:
        raise ValidationError({name: f"At most {MAX_UNIT_PRICE:,} USD per 1 million tokens."})
    if amount != amount.quantize(Decimal("0.0000000001")):
        raise ValidationError({name: "At most 10 decimal places."})
    return amount


def _current(account: Account, model: str) -> ModelPrice | None:
    return (
        ModelPrice.objects.filter(account=account, model=model, match=MatchType.EXACT, valid_from__lte=timezone.now())
        .order_by("-valid_from")
        .first()
    )


def plain(amount: Decimal | None) -> str | None:
    """A unit price as typed ("2.5", not "2.5000000000" as the column gives it back)."""
    return None if amount is None else f"{Decimal(amount).normalize():f}"


def _values(price: ModelPrice) -> dict:
    return {
        "input": plain(price.input_per_mtok),
        "output": plain(price.output_per_mtok),
        "cached_input": plain(price.cached_input_per_mtok),
    }


@transaction.atomic
def account_price_set(
    *,
    account: Account,
    model: str,
    input_per_mtok,
    output_per_mtok,
    cached_input_per_mtok=None,
    provider: str = "",
    actor: Actor | None = None,
) -> ModelPrice:
    """The account's price for `model` (an exact name) from now on; a ValidationError per field."""
    model = (model or "").strip()
    if not model:
        raise ValidationError({"model": "Name the model, exactly as the gateway sends it."})
    if len(model) > 255 or any(ord(c) < 32 for c in model):
        raise ValidationError({"model": "A model name has at most 255 characters and no control characters."})
    provider = (provider or "").strip()
    if len(provider) > 64 or any(ord(c) < 32 for c in provider):
        raise ValidationError({"provider": "A provider name has at most 64 characters and no control characters."})
    prices = {
        "input_per_mtok": _unit(input_per_mtok, "input_per_mtok"),
        "output_per_mtok": _unit(output_per_mtok, "output_per_mtok"),
        "cached_input_per_mtok": _unit(cached_input_per_mtok, "cached_input_per_mtok", required=False),
    }
    # Serialises two owners saving the same model at once (the unique constraint would
    # refuse the second row of the same instant anyway).
    Account.objects.select_for_update().filter(pk=account.pk).first()
    current = _current(account, model)
    if current is not None and all(getattr(current, name) == value for name, value in prices.items()):
        return current  # unchanged: no new row, nothing to log
    row = ModelPrice.objects.create(
        account=account,
        model=model,
        match=MatchType.EXACT,
        provider=provider or (current.provider if current else ""),
        source=PriceSource.ACCOUNT,
        valid_from=PRICE_FLOOR if current is None else timezone.now(),
        **prices,
    )
    record_event(
        account=account,
        action=AuditAction.PRICE_SET,
        actor=actor,
        details={"model": model, **_values(row), "previous": _values(current) if current else None},
    )
    return row


@transaction.atomic
def account_price_remove(*, account: Account, model: str, actor: Actor | None = None) -> int:
    """Removes the account's prices for `model` (its list price, if any, applies again to the
    next records); the number of rows removed. Records already priced keep their cost."""
    if any(ord(c) < 32 for c in model):  # PostgreSQL cannot compare a NUL: no such price
        raise ModelPrice.DoesNotExist(f"No price of yours for {model!r}")
    rows = ModelPrice.objects.filter(account=account, model=model, match=MatchType.EXACT)
    current = _current(account, model)
    if current is None:
        raise ModelPrice.DoesNotExist(f"No price of yours for {model!r}")
    removed, _ = rows.delete()
    record_event(
        account=account,
        action=AuditAction.PRICE_REMOVED,
        actor=actor,
        details={"model": model, "removed": _values(current), "rows": removed},
    )
    return removed
