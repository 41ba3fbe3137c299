"""run_bench.py's admin baseline: the real Django admin changelist (GET /admin/logs/requestlog/
with the same filters) through django.test.Client, logged in as a superuser made for the run."""

ADMIN_PATH = "/admin/logs/requestlog/"
ADMIN_RATIO = 20.0  # the keyset page must be at least 20x faster than the admin changelist


def admin_query(account_id: int, params: dict) -> dict:
    """The admin changelist's query string for the same filters: the admin takes lookups on
    the model's own fields (`?model__in=a,b`), `p` for its 1-based page; `window=all` leaves
    the time bound to `timestamp__gte` (the admin's default window is the last 24 hours)."""
    query = {"account__id__exact": account_id, "window": "all"}
    for name, value in params.items():
        if name == "start":
            query["timestamp__gte"] = value
        elif isinstance(value, list):
            query[f"{name}__in"] = ",".join(value)
        else:
            query[f"{name}__exact"] = value
    return query


class AdminClient:
    """django.test.Client logged in as a superuser made for this run (deleted by close()),
    GETting the real admin changelist: Django admin's own queries, paginator (its capped
    count) and template, as an operator's browser gets it (no HTTP socket)."""

    def __init__(self):
        import secrets

        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client

        if "testserver" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        self.user = get_user_model().objects.create_superuser(
            username=f"bench-admin-{secrets.token_hex(4)}", email="", password=None
        )
        self.client = Client()
        self.client.force_login(self.user)
        from logs.admin import RequestLogAdmin

        self.per_page = RequestLogAdmin.list_per_page
        self.max_rows = RequestLogAdmin.paginator.row_cap  # the admin lists the newest row_cap rows only

    def page_for(self, depth: int, matching: int) -> int:
        """The admin page holding row `depth`, or its last reachable page."""
        last = max(1, -(-min(matching, self.max_rows) // self.per_page))
        return min(depth // self.per_page + 1, last)

    def get(self, query: dict) -> int:
        response = self.client.get(ADMIN_PATH, query)
        if response.status_code != 200:
            raise RuntimeError(f"admin changelist answered {response.status_code} for {query}")
        return len(response.content)

    def close(self) -> None:
        self.client.logout()  # deletes the session row
        self.user.delete()
