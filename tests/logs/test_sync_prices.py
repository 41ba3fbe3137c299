"""sync_prices: ModelPrice from the genai-prices snapshot, idempotent, operator prices kept."""

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from genai_prices import types as gp

from logs.models import MatchType, ModelPrice, PriceSource
from logs.prices.book import price_for
from logs.prices.sync import PRICE_FLOOR, prices_sync, snapshot_listings

COUNTS_RE = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), operator-owned (\d+)")


def _run(*args) -> tuple[int, int, int, int]:
    out = StringIO()
    call_command("sync_prices", *args, stdout=out)
    created, updated, unchanged, operator = map(int, COUNTS_RE.search(out.getvalue()).groups())
    return created, updated, unchanged, operator


def _genai_rows(model: str):
    return list(
        ModelPrice.objects.filter(model=model, source=PriceSource.GENAI_PRICES, account__isnull=True).order_by(
            "valid_from"
        )
    )


@pytest.mark.django_db
def test_second_run_changes_nothing_and_counts_the_same_names():
    first = _run()
    rows_after_first = ModelPrice.objects.count()
    ids_after_first = set(ModelPrice.objects.values_list("id", flat=True))
    second = _run()

    assert first[0] > 1000 and first[1:] == (0, 0, 0)
    assert second == (0, 0, first[0], 0)
    assert ModelPrice.objects.count() == rows_after_first
    assert set(ModelPrice.objects.values_list("id", flat=True)) == ids_after_first
    assert not ModelPrice.objects.exclude(source=PriceSource.GENAI_PRICES).exists()


@pytest.mark.django_db
def test_dry_run_writes_nothing():
    out = StringIO()
    call_command("sync_prices", "--dry-run", stdout=out)
    assert out.getvalue().startswith("dry run: created ")
    assert ModelPrice.objects.count() == 0


@pytest.mark.django_db
def test_gpt_4o_mini_gets_openais_list_price():
    _run()
    price = price_for(account=None, model="gpt-4o-mini", at=datetime(2026, 11, 24, tzinfo=UTC))
    assert (price.model, price.match, price.provider) == ("gpt-4o-mini", MatchType.EXACT, "openai")
    assert (price.input_per_mtok, price.output_per_mtok, price.cached_input_per_mtok) == (
        Decimal("0.15"),
        Decimal("0.6"),
        Decimal("0.075"),
    )
    assert price.valid_from == PRICE_FLOOR
    # The dated alias is priced the same; prefix rows cover dated Anthropic names.
    assert price_for(account=None, model="gpt-4o-mini-2024-07-18", at=timezone.now()).input_per_mtok == Decimal("0.15")
    sonnet = price_for(account=None, model="claude-3-5-sonnet-20241022", at=timezone.now())
    assert (sonnet.model, sonnet.match, sonnet.provider) == ("claude-3-5-sonnet", MatchType.PREFIX, "anthropic")
    assert (sonnet.input_per_mtok, sonnet.output_per_mtok) == (Decimal(3), Decimal(15))


@pytest.mark.django_db
def test_a_resellers_exact_name_does_not_shadow_the_labs_prefix():
    # quicksilverpro lists "claude-opus-4-6" exactly at its own price; Anthropic's prefix wins.
    _run()
    price = price_for(account=None, model="claude-opus-4-6", at=timezone.now())
    assert (price.provider, price.match, price.input_per_mtok) == ("anthropic", MatchType.PREFIX, Decimal(5))
    assert not ModelPrice.objects.filter(model="claude-opus-4-6", match=MatchType.EXACT).exists()


@pytest.mark.django_db
def test_dated_prices_become_price_history():
    # OpenAI cut o3's price on 2025-06-10: two rows, and records on either side price differently.
    _run()
    rows = [(r.valid_from, r.input_per_mtok, r.output_per_mtok) for r in _genai_rows("o3")]
    assert rows == [
        (PRICE_FLOOR, Decimal(10), Decimal(40)),
        (datetime(2025, 6, 10, tzinfo=UTC), Decimal(2), Decimal(8)),
    ]
    assert price_for(account=None, model="o3", at=datetime(2025, 6, 9, 23, 59, tzinfo=UTC)).input_per_mtok == 10
    assert price_for(account=None, model="o3", at=datetime(2025, 6, 10, tzinfo=UTC)).input_per_mtok == 2


@pytest.mark.django_db
def test_operator_prices_and_account_overrides_are_never_touched(acme):
    operator = ModelPrice.objects.create(
        model="gpt-4o-mini",
        input_per_mtok=Decimal("0.1"),
        output_per_mtok=Decimal("0.5"),
        valid_from=datetime(2024, 1, 1, tzinfo=UTC),
        source=PriceSource.OPERATOR,
    )
    override = ModelPrice.objects.create(
        model="gpt-4o",
        input_per_mtok=Decimal("1"),
        output_per_mtok=Decimal("4"),
        valid_from=datetime(2024, 1, 1, tzinfo=UTC),
        account=acme,
        source=PriceSource.GENAI_PRICES,  # even if marked so, an account's row is not the list's
    )
    before = {
        row.pk: (row.model, row.input_per_mtok, row.output_per_mtok, row.valid_from, row.source)
        for row in (operator, override)
    }
    first = _run()
    second = _run()

    assert first[3] == second[3] == 1  # gpt-4o-mini is the operator's
    assert not _genai_rows("gpt-4o-mini")
    after = {
        row.pk: (row.model, row.input_per_mtok, row.output_per_mtok, row.valid_from, row.source)
        for row in ModelPrice.objects.filter(pk__in=before)
    }
    assert after == before
    now = timezone.now()
    assert price_for(account=None, model="gpt-4o-mini", at=now).pk == operator.pk
    # The list price for gpt-4o is seeded beside the override, and acme still gets its own.
    assert price_for(account=None, model="gpt-4o", at=now).source == PriceSource.GENAI_PRICES
    assert price_for(account=acme, model="gpt-4o", at=now).pk == override.pk


@pytest.mark.django_db
def test_a_changed_list_price_is_a_new_row_from_now_and_the_old_row_stays():
    first_sync = datetime(2026, 11, 1, tzinfo=UTC)
    prices_sync(now=first_sync)
    # What an older snapshot said: gpt-4o-mini at 0.20 / 0.80.
    ModelPrice.objects.filter(model="gpt-4o-mini", source=PriceSource.GENAI_PRICES).update(
        input_per_mtok=Decimal("0.2"), output_per_mtok=Decimal("0.8")
    )
    (old,) = _genai_rows("gpt-4o-mini")

    now = datetime(2026, 11, 24, 22, 0, 0, 123456, tzinfo=UTC)
    result = prices_sync(now=now)
    assert (result.created, result.updated, result.rows_written) == (0, 1, 1)

    old_again, new = _genai_rows("gpt-4o-mini")
    assert (old_again.pk, old_again.input_per_mtok, old_again.valid_from) == (old.pk, Decimal("0.2"), PRICE_FLOOR)
    assert (new.input_per_mtok, new.output_per_mtok, new.valid_from) == (Decimal("0.15"), Decimal("0.6"), now)
    assert price_for(account=None, model="gpt-4o-mini", at=now - timedelta(microseconds=1)).pk == old.pk
    assert price_for(account=None, model="gpt-4o-mini", at=now).pk == new.pk

    again = prices_sync(now=now + timedelta(hours=1))
    assert (again.created, again.updated, again.rows_written) == (0, 0, 0)
    assert again.unchanged == result.unchanged + 1


def _model(model_id, match, prices):
    return gp.ModelInfo(id=model_id, match=match, prices=prices)


def _provider(provider_id, models):
    return gp.Provider(id=provider_id, name=provider_id, api_pattern="", models=models)


def _price(i, o, cached=None):
    return gp.ModelPrice(input_mtok=Decimal(i), output_mtok=Decimal(o), cache_read_mtok=cached)


def test_clause_mapping_tiers_and_provider_priority_on_a_small_snapshot():
    providers = [
        # Listed first, but a reseller: OpenAI's own price must win for the same name.
        _provider("openrouter", [_model("m1", gp.ClauseEquals(equals="m1"), _price("9", "9"))]),
        _provider(
            "openai",
            [
                _model(
                    "m1",
                    gp.ClauseOr(or_=[gp.ClauseEquals(equals="m1"), gp.ClauseStartsWith(starts_with="m1-")]),
                    _price("1", "2", Decimal("0.5")),
                ),
                _model("contains", gp.ClauseContains(contains="x"), _price("1", "1")),
                _model(
                    "tiered",
                    gp.ClauseEquals(equals="tiered"),
                    gp.ModelPrice(
                        input_mtok=gp.TieredPrices(base=Decimal("1.25"), tiers=[gp.Tier(200_000, Decimal("2.5"))]),
                        output_mtok=Decimal(10),
                    ),
                ),
                _model("embed", gp.ClauseEquals(equals="embed"), gp.ModelPrice(input_mtok=Decimal("0.02"))),
                _model("image", gp.ClauseEquals(equals="image"), gp.ModelPrice(output_mtok=Decimal(30))),
                _model(
                    "float-noise",
                    gp.ClauseEquals(equals="float-noise"),
                    _price(Decimal("0.18000000000000002"), Decimal("1.0399999999999998")),
                ),
            ],
        ),
    ]
    listings, skipped = snapshot_listings(providers)
    flat = {
        key: (listing.provider, [(frm, p.input, p.output, p.cached_input) for frm, p in listing.schedule])
        for key, listing in listings.items()
    }
    assert flat == {
        ("m1", "exact"): ("openai", [(PRICE_FLOOR, Decimal(1), Decimal(2), Decimal("0.5"))]),
        ("m1-", "prefix"): ("openai", [(PRICE_FLOOR, Decimal(1), Decimal(2), Decimal("0.5"))]),
        ("tiered", "exact"): ("openai", [(PRICE_FLOOR, Decimal("1.25"), Decimal(10), None)]),
        ("embed", "exact"): ("openai", [(PRICE_FLOOR, Decimal("0.02"), Decimal(0), None)]),
        ("float-noise", "exact"): ("openai", [(PRICE_FLOOR, Decimal("0.18"), Decimal("1.04"), None)]),
    }
    assert sorted(skipped) == ["openai:contains", "openai:image"]


def test_conditional_prices_keep_dates_and_ignore_time_of_day():
    start = date(2026, 8, 17)
    model = _model(
        "dated",
        gp.ClauseEquals(equals="dated"),
        [
            gp.ConditionalPrice(prices=_price("1", "2")),
            gp.ConditionalPrice(constraint=gp.StartDateConstraint(start_date=start), prices=_price("3", "4")),
            gp.ConditionalPrice(
                constraint=gp.TimeOfDateConstraint(start_time=time(1, 0), end_time=time(4, 0)),
                prices=_price("9", "9"),
            ),
        ],
    )
    listings, _ = snapshot_listings([_provider("deepseek", [model])])
    schedule = [(frm, p.input, p.output) for frm, p in listings[("dated", "exact")].schedule]
    assert schedule == [
        (PRICE_FLOOR, Decimal(1), Decimal(2)),
        (datetime(2026, 8, 17, tzinfo=UTC), Decimal(3), Decimal(4)),
    ]


@pytest.mark.django_db
def test_a_future_dated_price_gets_its_own_date_and_is_written_once():
    start = date(2027, 1, 1)
    model = _model(
        "soon",
        gp.ClauseEquals(equals="soon"),
        [
            gp.ConditionalPrice(prices=_price("1", "2")),
            gp.ConditionalPrice(constraint=gp.StartDateConstraint(start_date=start), prices=_price("0.5", "1")),
        ],
    )
    old_snapshot = [_provider("openai", [_model("soon", gp.ClauseEquals(equals="soon"), _price("1", "2"))])]
    new_snapshot = [_provider("openai", [model])]
    now = datetime(2026, 11, 24, tzinfo=UTC)

    assert prices_sync(providers=old_snapshot, now=now).created == 1
    result = prices_sync(providers=new_snapshot, now=now)
    assert (result.updated, result.rows_written) == (1, 1)
    assert [(r.valid_from, r.input_per_mtok) for r in _genai_rows("soon")] == [
        (PRICE_FLOOR, Decimal(1)),
        (datetime(2027, 1, 1, tzinfo=UTC), Decimal("0.5")),
    ]
    assert prices_sync(providers=new_snapshot, now=now + timedelta(days=1)).rows_written == 0
