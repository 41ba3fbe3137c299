"""Which unit price applies to a record, and what the record cost.

cost = (prompt - cached) x input + cached x cached_input + completion x output, prices per
million tokens. Cached tokens are part of prompt_tokens (as in OpenAI's usage object); when
a model has no cached price they are billed at the input price. The result is rounded
half-up to 12 decimal places, the column's scale, so a sum of stored costs is exact.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q

from console.models import Account
from logs.models import MatchType, ModelPrice

MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.000000000001")
# A ModelPrice row's unit prices ($ per million tokens), in the order the admin and the
# price files list them.
UNIT_PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")


def compute_cost(
    price: ModelPrice, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int | None
) -> Decimal:
    cached = min(cached_tokens or 0, prompt_tokens)
    if price.cached_input_per_mtok is None:
        cached = 0
    uncached = prompt_tokens - cached
    cost = uncached * price.input_per_mtok + completion_tokens * price.output_per_mtok
    if cached:
        cost += cached * price.cached_input_per_mtok
    return (cost / MILLION).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


@dataclass
class PriceBook:
    """The price rows that can apply to a batch of records, indexed for lookups in memory.

    Precedence: the account's own price over the list price, an exact model name over a
    prefix, a longer prefix over a shorter one, and among those the latest valid_from that
    is not after the record's timestamp.
    """

    exact: dict[str, list[ModelPrice]] = field(default_factory=lambda: defaultdict(list))
    prefixes: list[ModelPrice] = field(default_factory=list)

    @classmethod
    def load(cls, *, account: Account | None, models) -> "PriceBook":
        rows = (
            ModelPrice.objects.for_account(account)
            .filter(Q(match=MatchType.EXACT, model__in=set(models)) | Q(match=MatchType.PREFIX))
            .order_by("-valid_from")
        )
        book = cls()
        for row in rows:
            if row.match == MatchType.EXACT:
                book.exact[row.model].append(row)
            else:
                book.prefixes.append(row)
        return book

    def price_for(self, model: str, at: datetime) -> ModelPrice | None:
        candidates = [p for p in self.exact.get(model, ()) if p.valid_from <= at]
        if not candidates:
            candidates = [p for p in self.prefixes if model.startswith(p.model) and p.valid_from <= at]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (p.account_id is not None, len(p.model), p.valid_from))


def price_for(*, account: Account | None, model: str, at: datetime) -> ModelPrice | None:
    return PriceBook.load(account=account, models=[model]).price_for(model, at)
