"""Writes to the price list: `prices_sync` seeds and updates ModelPrice from genai-prices.

genai-prices ships an offline snapshot (`genai_prices.data.providers`), so no network is
needed. Its rules are richer than a ModelPrice row, so the mapping is deliberately lossy:

- Match clauses: `equals` -> an exact row, `starts_with` -> a prefix row, `or` -> one row per
  branch that can be expressed. `contains`, `ends_with` and `regex` cannot be expressed and
  are skipped. An `and` of one equals/starts_with with narrowing regexes keeps the positive
  clause (in the snapshot: gemini-2.5-pro minus its -tts variants, which have exact rows of
  their own and exact rows win over prefixes).
- Tiered prices (a higher rate above e.g. 200k prompt tokens): the base tier is taken, the
  price of all but very long prompts.
- Dated conditional prices (StartDateConstraint) become price history: each date is a row
  with valid_from at 00:00 UTC that day. Time-of-day prices (off-peak discounts) cannot be
  expressed; their standard price is kept.
- Only input, output and cache-read prices map onto ModelPrice; cache writes, audio, image
  and per-request prices are ignored. A model with an input price and no output price
  (embeddings) gets output 0; a model with no input price is skipped.
- One model name can appear under several providers (resellers list the labs' models). A
  name goes to the first provider in PROVIDER_PRIORITY that prices it: the model's own lab
  first, then hosts of open models, resellers and aggregators last, so "gpt-4o-mini" gets
  OpenAI's list price, not Azure's or OpenRouter's.

Safety rules: rows are never rewritten. A price that differs from the one in force becomes
a new row with valid_from = now (or the snapshot's future start date); a model name that has
any list row with source=operator is left alone entirely (an operator's price stays in force),
and account overrides are never read or written here.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone
from genai_prices import types as gp

from logs.models import PRICE_FLOOR, MatchType, ModelPrice, PriceSource
from logs.prices.book import UNIT_PRICE_FIELDS

PRICE_QUANTUM = Decimal("0.0000000001")  # ModelPrice's 10 decimal places

PROVIDER_PRIORITY = (
    # The labs, for their own model names.
    "openai",
    "anthropic",
    "google",
    "mistral",
    "deepseek",
    "x-ai",
    "meta",
    "cohere",
    "moonshotai",
    "zai",
    "minimax",
    "perplexity",
    "voyageai",
    "elevenlabs",
)
# Resellers and aggregators: they list other providers' models, sometimes at other prices.
PROVIDER_LAST = ("azure", "aws", "github-copilot", "cursor", "databricks", "cloudflare", "openrouter")

Key = tuple[str, str]  # (model, match)


@dataclass(frozen=True)
class UnitPrices:
    input: Decimal
    output: Decimal
    cached_input: Decimal | None

    @classmethod
    def of(cls, row: ModelPrice) -> "UnitPrices":
        return cls(row.input_per_mtok, row.output_per_mtok, row.cached_input_per_mtok)


@dataclass
class Listing:
    """What the snapshot says for one (model, match): the provider and a price schedule."""

    provider: str
    rank: int  # position of the provider in priority order
    schedule: list[tuple[datetime, UnitPrices]]


@dataclass
class PriceSyncResult:
    """Counts of (model, match) names; a second run reports all of them as unchanged."""

    created: int = 0  # names seen for the first time
    updated: int = 0  # names that got a new price row
    unchanged: int = 0
    operator_owned: int = 0  # names left alone because an operator set their price
    rows_written: int = 0
    not_expressible: list[str] = field(default_factory=list)  # provider:model ids skipped

    def summary(self) -> str:
        return (
            f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
            f"operator-owned {self.operator_owned} (rows written: {self.rows_written}; "
            f"{len(self.not_expressible)} snapshot models not expressible)"
        )


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, gp.TieredPrices):
        value = value.base
    # The snapshot has float artefacts such as 0.18000000000000002; the column has 10 places.
    return Decimal(value).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)


def _unit_prices(prices) -> UnitPrices | None:
    input_price = _decimal(prices.input_mtok)
    if input_price is None:
        return None
    output_price = _decimal(prices.output_mtok)
    return UnitPrices(
        input_price, output_price if output_price is not None else Decimal(0), _decimal(prices.cache_read_mtok)
    )


def _schedule(model_info) -> list[tuple[datetime, UnitPrices]] | None:
    """The list price over time, as genai-prices would resolve it at each start date."""
    if not isinstance(model_info.prices, list):
        prices = _unit_prices(model_info.prices)
        return [(PRICE_FLOOR, prices)] if prices else None

    # genai-prices takes the LAST entry whose constraint holds, else the first entry.
    entries: list[gp.ConditionalPrice] = [
        entry for entry in model_info.prices if not isinstance(entry.constraint, gp.TimeOfDateConstraint)
    ]
    if not entries:
        return None
    starts = sorted(
        {datetime.combine(e.constraint.start_date, time(), tzinfo=UTC) for e in entries if e.constraint is not None}
    )

    def resolve(at: datetime):
        for entry in reversed(entries):
            constraint = entry.constraint
            if constraint is None or (isinstance(constraint, gp.StartDateConstraint) and constraint.active(at)):
                return entry.prices
        return entries[0].prices

    schedule: list[tuple[datetime, UnitPrices]] = []
    for at in [PRICE_FLOOR, *starts]:
        prices = _unit_prices(resolve(at))
        if prices is None:
            return None
        if not schedule or schedule[-1][1] != prices:
            schedule.append((at, prices))
    return schedule


def _match_keys(clause) -> list[Key]:
    if isinstance(clause, gp.ClauseEquals):
        return [(clause.equals, MatchType.EXACT)]
    if isinstance(clause, gp.ClauseStartsWith):
        return [(clause.starts_with, MatchType.PREFIX)]
    if isinstance(clause, gp.ClauseOr):
        return [key for branch in clause.or_ for key in _match_keys(branch)]
    if isinstance(clause, gp.ClauseAnd):
        positive = [c for c in clause.and_ if isinstance(c, (gp.ClauseEquals, gp.ClauseStartsWith))]
        narrowing = [c for c in clause.and_ if isinstance(c, gp.ClauseRegex)]
        if len(positive) == 1 and len(positive) + len(narrowing) == len(clause.and_):
            return _match_keys(positive[0])
    return []  # contains, ends_with, regex: no ModelPrice equivalent


def _provider_order(providers) -> list:
    def rank(indexed):
        index, provider = indexed
        if provider.id in PROVIDER_PRIORITY:
            return (0, PROVIDER_PRIORITY.index(provider.id))
        if provider.id in PROVIDER_LAST or provider.id.startswith("huggingface_"):
            return (2, index)
        return (1, index)

    return [provider for _, provider in sorted(enumerate(providers), key=rank)]


def snapshot_listings(providers=None) -> tuple[dict[Key, Listing], list[str]]:
    """{(model, match): Listing} from the genai-prices snapshot, and the ids skipped."""
    if providers is None:
        # Imported here: the snapshot is a large module that only this command needs.
        from genai_prices import data

        providers = data.providers
    listings: dict[Key, Listing] = {}
    skipped: list[str] = []
    for rank, provider in enumerate(_provider_order(providers)):
        for model_info in provider.models:
            keys = _match_keys(model_info.match)
            schedule = _schedule(model_info) if keys else None
            if not schedule:
                skipped.append(f"{provider.id}:{model_info.id}")
                continue
            for key in keys:
                if len(key[0]) <= 255:
                    listings.setdefault(key, Listing(provider.id, rank, schedule))
    return _without_shadowed(listings), skipped


def _without_shadowed(listings: dict[Key, Listing]) -> dict[Key, Listing]:
    """Drop names that a higher-priority provider's prefix already covers.

    PriceBook prefers an exact name over a prefix, so a reseller's exact "claude-opus-4-6"
    would otherwise beat Anthropic's prefix "claude-opus-4-6" and price Anthropic traffic
    at the reseller's rate. A provider's own exact names inside its own prefixes stay.
    """
    prefixes = [
        (model.lower(), listing.rank) for (model, match), listing in listings.items() if match == MatchType.PREFIX
    ]
    return {
        (model, match): listing
        for (model, match), listing in listings.items()
        if not any(rank < listing.rank and model.lower().startswith(prefix) for prefix, rank in prefixes)
    }


def _in_force(rows: list[tuple[datetime, UnitPrices]], at: datetime) -> UnitPrices | None:
    current = None
    for valid_from, prices in rows:  # sorted by valid_from
        if valid_from <= at:
            current = prices
    return current


def _new_rows(
    schedule: list[tuple[datetime, UnitPrices]], existing: list[tuple[datetime, UnitPrices]], now: datetime
) -> list[tuple[datetime, UnitPrices]]:
    """Rows to add so the snapshot's schedule holds from now on. Periods already over are
    history: they were recorded by earlier runs and are not rewritten."""
    if not existing:
        return list(schedule)
    rows = sorted(existing, key=lambda r: r[0])
    new: list[tuple[datetime, UnitPrices]] = []
    for index, (valid_from, prices) in enumerate(schedule):
        next_from = schedule[index + 1][0] if index + 1 < len(schedule) else None
        if next_from is not None and next_from <= now:
            continue
        # The period in force now is checked at now (a change takes effect now); a future
        # period at its own start date.
        at = max(valid_from, now)
        if _in_force(rows, at) != prices:
            new.append((at, prices))
            rows = sorted([*rows, (at, prices)], key=lambda r: r[0])
    return new


@transaction.atomic
def prices_sync(*, providers=None, now: datetime | None = None, dry_run: bool = False) -> PriceSyncResult:
    """Bring the genai-prices list rows up to date with the snapshot. Safe to run twice."""
    now = now or timezone.now()
    listings, skipped = snapshot_listings(providers)
    result = PriceSyncResult(not_expressible=skipped)

    existing: dict[Key, list[tuple[datetime, UnitPrices]]] = defaultdict(list)
    operator_keys: set[Key] = set()
    for row in ModelPrice.objects.filter(account__isnull=True).only(
        "model", "match", "source", "valid_from", *UNIT_PRICE_FIELDS
    ):
        key = (row.model, row.match)
        if row.source == PriceSource.GENAI_PRICES:
            existing[key].append((row.valid_from, UnitPrices.of(row)))
        else:
            operator_keys.add(key)

    to_create: list[ModelPrice] = []
    for key, listing in listings.items():
        if key in operator_keys:
            result.operator_owned += 1
            continue
        new = _new_rows(listing.schedule, existing.get(key, []), now)
        if not new:
            result.unchanged += 1
            continue
        if key in existing:
            result.updated += 1
        else:
            result.created += 1
        model, match = key
        to_create += [
            ModelPrice(
                model=model,
                match=match,
                provider=listing.provider,
                input_per_mtok=prices.input,
                output_per_mtok=prices.output,
                cached_input_per_mtok=prices.cached_input,
                valid_from=valid_from,
                source=PriceSource.GENAI_PRICES,
                created_at=now,
            )
            for valid_from, prices in new
        ]
    result.rows_written = len(to_create)
    if not dry_run:
        ModelPrice.objects.bulk_create(to_create, batch_size=500)
    return result
