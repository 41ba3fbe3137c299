"""The request-log changelist of the Django admin, bounded so that no page of it reads much.

No index of the log leads with the timestamp (every one leads with account_id, logs.models),
so a changelist over all accounts is a scan of whatever partitions its time window touches.
Hence: a time window (last 24 hours by default) that PostgreSQL prunes partitions by, an
account filter that adds the account's retention classes (pruning the other LIST partitions),
a fixed newest-first order, and at most ROW_CAP rows reachable (the newest ones), counted with
a LIMIT. Deeper browsing belongs to the console's log list (keyset-paged) and the query API.
"""

from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.functional import cached_property

from console.errors import QueryTimeout
from console.models import Account
from logs import gate
from logs.models import Status
from logs.selectors import statement_timeout

# The newest rows of a selection the admin lists: 200 pages of 50. Page 200 is an OFFSET of
# 9,950 rows, which PostgreSQL reads through the index (with an account) or sorts in memory.
ROW_CAP = 10_000
ORDERING = ["-timestamp", "-id"]
WINDOWS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "all": ("Any time", None),
}
DEFAULT_WINDOW = "24h"
# Wider windows first try these: when the newest ROW_CAP rows all lie within one, the pages
# are the same and PostgreSQL reads only the partitions it touches (see NewestRowsPaginator).
NARROWER = (timedelta(hours=24), timedelta(days=3), timedelta(days=7), timedelta(days=30))


def chosen_window(request) -> str:
    """The time window of the request: ?window=, else the last 24 hours, but any time for a
    request-id search (indexed, looking for one row whenever it was)."""
    value = request.GET.get(TimeWindowFilter.parameter_name)
    if value in WINDOWS:
        return value
    term = request.GET.get(SEARCH_VAR, "")
    searching = bool(term.strip()) and "\x00" not in term  # the search form refuses a NUL
    return "all" if searching else DEFAULT_WINDOW


def oldest_needed(request, now: datetime) -> datetime | None:
    """The earliest timestamp the request's filters let in (its window, ?timestamp__gte=)."""
    delta = WINDOWS[chosen_window(request)][1]
    bounds = [now - delta] if delta is not None else []
    try:
        gte = parse_datetime(request.GET.get("timestamp__gte", "").replace("\x00", "?"))
    except ValueError:
        gte = None  # the lookup itself reports it
    if gte is not None and gte.tzinfo is not None:
        bounds.append(gte)
    return max(bounds, default=None)


def is_moment(value: str | None) -> bool:
    """A date or date-time between the years 0002 and 9998 (as the log list's start / end):
    near year 1 or 9999 a UTC offset overflows Python's datetime (a 500 on SQLite)."""
    try:
        moment = parse_datetime(value or "") or parse_date(value or "")
    except ValueError:
        return False
    return moment is not None and 2 <= moment.year <= 9998


class TimeWindowFilter(admin.SimpleListFilter):
    """Last 24 hours unless asked otherwise (chosen_window): the default page reads the
    newest partitions only."""

    title = "time"
    parameter_name = "window"

    def __init__(self, request, params, model, model_admin):
        self.window = chosen_window(request)
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in WINDOWS.items()]

    def chosen(self) -> str:
        return self.window

    def queryset(self, request, queryset):
        delta = WINDOWS[self.chosen()][1]
        return queryset if delta is None else queryset.filter(timestamp__gte=timezone.now() - delta)

    def choices(self, changelist):
        chosen = self.chosen()
        for key, label in self.lookup_choices:
            yield {
                "selected": key == chosen,
                "query_string": changelist.get_query_string({self.parameter_name: key}),
                "display": label,
            }


class AccountFilter(admin.SimpleListFilter):
    """Choices from the Account table (a few hundred rows); RelatedOnlyFieldListFilter would
    run SELECT DISTINCT account_id over the whole log on every page. The parameter keeps the
    name of Django's own related filter, so existing links still work."""

    title = "account"
    parameter_name = "account__id__exact"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Account.objects.order_by("name").values_list("pk", "name")]

    def account(self) -> Account | None:
        value = self.value() or ""
        if not (value.isascii() and value.isdigit() and len(value) < 19):
            return None
        return Account.objects.filter(pk=int(value)).first()

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        account = self.account()
        if account is None:
            return queryset.none()  # junk or an unknown id matches nothing
        # The gate's queryset names the account's retention classes, so PostgreSQL prunes
        # the other classes' partitions while planning.
        return queryset & gate.request_logs(account=account)


class StatusFilter(admin.SimpleListFilter):
    """Success / error; a value that is neither matches nothing (and never reaches the
    database, which refuses text with a NUL)."""

    title = "status"
    parameter_name = "status__exact"

    def lookups(self, request, model_admin):
        return Status.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(status=value) if value in Status.values else queryset.none()


def capped_count(queryset, cap: int) -> int:
    """How many rows, counting at most `cap`: a LIMIT-ed subquery, never COUNT(*) over all."""
    return queryset.order_by()[:cap].count()


class NewestRowsPaginator(Paginator):
    """Pages over the newest ROW_CAP rows of the selection, counting at most ROW_CAP.

    The changelist is ordered newest first (RequestLogChangeList), so when the newest
    ROW_CAP rows all lie within the last 24 hours (or 7 or 30 days), the selection cut to
    that span has the same first ROW_CAP rows: the paginator then reads the cut selection,
    and "Any time" over all accounts reads the newest partitions instead of every one. A
    page number past the last page shows the last page."""

    row_cap = ROW_CAP

    def __init__(self, object_list, per_page, *args, oldest=None, now=None, narrow=True, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        # Spans reaching no further back than the selection would read it all again; and one
        # account's rows are read through its (account, timestamp) index, newest first, so
        # its counts stop after row_cap entries without any narrowing.
        self.now = now or timezone.now()
        self.spans = [s for s in NARROWER if narrow and (oldest is None or self.now - s > oldest)]

    @cached_property
    def count(self) -> int:
        # Without an index on the timestamp each try reads its partitions: after one that
        # found n < row_cap rows, skip the spans too short to hold row_cap at that rate
        # (a guess only; whatever span is read, the pages are right).
        needed = timedelta(0)
        for span in self.spans:
            if span < needed:
                continue
            narrowed = self.object_list.filter(timestamp__gte=self.now - span)
            found = capped_count(narrowed, self.row_cap)
            if found == self.row_cap:
                self.object_list = narrowed
                return self.row_cap
            needed = span * self.row_cap / max(found, 1)
        return capped_count(self.object_list, self.row_cap)

    def page(self, number):
        """The page's keys first, then its rows: (timestamp, id) are in every partition's
        primary key, so PostgreSQL finds them with an index-only scan (without an account,
        half the time of reading the rows from the heap at 10 M rows) and then fetches 50
        rows by id in the partitions of the page's time span."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        keys = list(self.object_list.values_list("timestamp", "id")[bottom : bottom + self.per_page])
        rows = self.object_list.none()
        if keys:
            times = [ts for ts, _ in keys]
            rows = self.object_list.filter(
                id__in=[pk for _, pk in keys], timestamp__gte=min(times), timestamp__lte=max(times)
            )
        return self._get_page(list(rows), number, self)

    def validate_number(self, number) -> int:
        try:
            number = int(number)
        except (TypeError, ValueError):
            return 1
        return max(1, min(number, self.num_pages))


class RequestLogChangeList(ChangeList):
    def get_ordering(self, request, queryset):
        # Newest first, always: the order the indexes serve and the paginator relies on
        # (sorting 10 M rows by cost is not an admin page).
        return list(ORDERING)

    def get_results(self, request):
        try:
            # JIT off (compiling cost more than these queries), and a runaway query ends
            # with a message instead of hanging.
            with statement_timeout():
                super().get_results(request)
                self.result_list = list(self.result_list)
        except QueryTimeout:
            messages.error(request, f"{QueryTimeout.message} Choose an account or a shorter time window.")
            self.queryset = self.queryset.none()
            super().get_results(request)
        asked = self.page_num
        self.page_num = self.paginator.validate_number(asked)
        if asked > self.page_num and self.multi_page:
            cap = self.paginator.row_cap
            capped = f" (the admin lists the newest {cap:,} rows)" if self.result_count >= cap else ""
            messages.warning(
                request,
                f"Page {asked:,} is past the last page, {self.page_num:,}{capped}: showing that page. "
                "Browse deeper in the console's log list or the query API.",
            )
