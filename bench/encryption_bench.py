"""What log encryption costs ingest and export: the same records into two accounts of a
fresh database, one with encryption off and one on, in the same run.

Ingest goes through the ingest service (`ingest_records`, what POST /api/v1/ingest calls
after parsing JSON: validation, pricing, masking, encryption, COPY, rollups) in batches of
1,000, the two accounts' batches interleaved so a busy moment of the shared machine hits
both alike. Export reads each account's whole log through logs.exports (`file_body`, what
/logs/export/ and /api/v1/export stream) as CSV and NDJSON, `--rounds` times (median). The
plain account's CSV takes the COPY path; an account that has encrypted rows takes the values
path and decrypts, so the plain account is also exported through the values path (COPY
off) to show which part of the cost is the path and which the decryption. Then the
encrypted rows are re-encrypted with a new key (rotate_account) and timed.

The database is created (and migrated) if missing and dropped at the end unless --keep:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enc_bench DEBUG=1 \\
        .venv/bin/python bench/encryption_bench.py [--records 100000] [--rounds 3] [--keep]
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_DIR, bench_database_url, database_name, maintenance_url

BATCH = 1_000


def create_database(url: str) -> None:
    import psycopg

    name = database_name(url)
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO_DIR, check=True, env=os.environ)


def drop_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


def ingest(accounts, records_per_account: int) -> dict:
    """Seconds of ingest_records per account, batches interleaved."""
    from bench.ingest_bench import make_records
    from logs.ingest.services import ingest_records

    rng = random.Random(15)
    seconds = {account.slug: 0.0 for account in accounts}
    keys = [f"key-{n:02d}" for n in range(20)]
    # Untimed warm-up: partitions, price book, the first COPY (counted in the rows, not the time).
    warm = make_records(BATCH, keys, rng, "warm")
    for account in accounts:
        ingest_records(account=account, records=[dict(r, request_id=f"{account.slug}-{r['request_id']}") for r in warm])
    records_per_account -= BATCH
    for start in range(0, records_per_account, BATCH):
        batch = make_records(min(BATCH, records_per_account - start), keys, rng, f"b{start}")
        for account in accounts:
            records = [dict(r, request_id=f"{account.slug}-{r['request_id']}") for r in batch]
            t0 = time.perf_counter()
            result = ingest_records(account=account, records=records, source="bench")
            seconds[account.slug] += time.perf_counter() - t0
            if result.accepted != len(records):
                raise RuntimeError(
                    f"{account.slug}: accepted {result.accepted} of {len(records)}: {result.rejected[:1]}"
                )
    return seconds


def export_seconds(account, fmt: str, *, copy: bool = True) -> tuple[float, int]:
    from django.http import QueryDict

    from logs import selectors
    from logs.exports import chunks

    filterset = selectors.filter_request_logs(account=account, params=QueryDict(""))
    assert filterset.is_valid(), filterset.form.errors
    chunks.USE_COPY = copy
    try:
        t0 = time.perf_counter()
        size = sum(len(part) for part in chunks.file_body(filterset, export_format=fmt, compress=False))
        return time.perf_counter() - t0, size
    finally:
        chunks.USE_COPY = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per account (default 100,000)")
    parser.add_argument("--rounds", type=int, default=3, help="export rounds, median reported (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()
    url = bench_database_url()
    if not database_name(url).startswith("enc_"):
        sys.exit("use a database of this bench's own, e.g. .../enc_bench (it is dropped at the end)")
    from cryptography.fernet import Fernet

    os.environ["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    create_database(url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    from django.conf import settings

    from console.models import Account
    from logs.gate import request_logs
    from logs.rotation import rotate_account

    try:
        plain, crypt = (
            Account.objects.get_or_create(slug=slug, defaults={"name": slug, "tier": "enterprise"})[0]
            for slug in ("enc-plain", "enc-crypt")
        )
        Account.objects.filter(pk=crypt.pk).update(encryption_enabled=True)
        crypt.refresh_from_db()
        n = args.records
        if request_logs(account=plain).count() != n or request_logs(account=crypt).count() != n:
            if request_logs(account=plain).exists() or request_logs(account=crypt).exists():
                sys.exit("the accounts hold rows of another run: drop the database (or run without --keep)")
            print(f"ingest: {n:,} records into each account, batches of {BATCH:,}, interleaved", flush=True)
            seconds = ingest([plain, crypt], n)
            timed = n - BATCH  # the warm-up batch is not timed
            off, on = timed / seconds[plain.slug], timed / seconds[crypt.slug]
            print(
                f"  ingest_records   off {off:>9,.0f} rec/s   on {on:>9,.0f} rec/s   "
                f"on/off time {seconds[crypt.slug] / seconds[plain.slug]:.2f}x",
                flush=True,
            )
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE logs_requestlog")
            cursor.execute(
                "SELECT account_id, avg(pg_column_size(user_agent) + "
                "pg_column_size(request_params) + coalesce(pg_column_size(error_details), 0)) "
                "FROM logs_requestlog GROUP BY account_id"
            )
            sizes = dict(cursor.fetchall())
        print(f"  stored bytes of the 3 columns per row: off {sizes[plain.pk]:.0f}, on {sizes[crypt.pk]:.0f}")

        print(f"export: the whole log of each account ({n:,} rows), median of {args.rounds} rounds", flush=True)
        for fmt in ("csv", "ndjson"):
            cases = {"off": (plain, True), "off, values path": (plain, False), "on": (crypt, True)}
            if fmt != "csv":
                cases.pop("off, values path")  # the same path as "off"
            times = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, (account, copy) in cases.items():
                    times[name].append(export_seconds(account, fmt, copy=copy)[0])
            med = {name: statistics.median(values) for name, values in times.items()}
            line = "   ".join(f"{name} {med[name]:.2f} s ({n / med[name]:,.0f} rows/s)" for name in cases)
            print(f"  {fmt:<7} {line}   on/off time {med['on'] / med['off']:.2f}x", flush=True)

        os.environ["FIELD_ENCRYPTION_KEY"] = f"{Fernet.generate_key().decode()},{settings.FIELD_ENCRYPTION_KEY}"
        settings.FIELD_ENCRYPTION_KEY = os.environ["FIELD_ENCRYPTION_KEY"]
        t0 = time.perf_counter()
        rotated = rotate_account(crypt, batch_rows=1000)
        seconds = time.perf_counter() - t0
        print(
            f"rotate: {rotated.rotated:,} rows re-encrypted in {seconds:.1f} s "
            f"({rotated.rotated / seconds:,.0f} rows/s)"
        )
        print(f"machine: {os.getloadavg()[0]:.2f} load (1 min), {os.cpu_count()} cores", flush=True)
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
