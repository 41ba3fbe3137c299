"""Archive before purge (issue 15): with METERLOG_ARCHIVE_BEFORE_PURGE on, a purge run first
writes every row it is about to delete to METERLOG_ARCHIVE_DIR, verifies the files, lists
them in the month's manifest, and deletes an account's rows only then.

Files: the archive_logs layout (logs/archive.py), one file per account, month and run,
`DIR/<slug>/<slug>-<YYYY-MM>.purge-<run id>.ndjson.gz`, holding exactly the account's rows of
that month older than the run's cutoff (every row the run deletes: normally the day since
the last purge, on a first run or after a backfill of old rows more). Not the month file: a
daily purge takes a day at a time, and rewriting `<slug>-<YYYY-MM>.ndjson.gz` would replace a
complete month with a partial one. A purge file is never overwritten: if the name is taken
(a database restored with older run ids) the next free `-2`, `-3`, ... suffix is used.

Verify: after writing, the file is read back; its sha256, size and line count must match
what was written, or the file is removed and the account counts as failed. A failed account
(unwritable directory, disk full, bad manifest) keeps all its rows this run: none of them is
deleted, no partition holding one is dropped; the run ends "failed" with the error, other
accounts purge as usual.

Order and locks: every account is archived first, through the tenant gate in keyset chunks
(plain reads, each its own statement: no lock held between them, none that DETACH waits
for), then partitions are detached and dropped and batches deleted as before. Archiving
from a detached table instead would leave a failed account's rows detached (invisible yet
not deleted) until a re-ATTACH, which takes the class table's lock again and scans the
partition.

Time: the archive takes at most half of what is left of the run's time budget (the rest
is the deletes'). When its share runs out it stops at a month boundary (after at least one
file per run, so any backlog shrinks); the account's rows from there on stay this run, as
do those of accounts not reached, and the run is "partial".

A run that dies after archiving and before deleting: its files are complete and listed (the
manifest is updated after each file); the next run archives the rows still there again into
its own file. Both verify; the rows are in two files, and importing both restores each row
once (import skips a request_id the account already has).
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from logs import archive
from logs.api.serializers import format_timestamp
from logs.gate import request_logs
from logs.retention.models import PurgeRun, PurgeStatus
from logs.retention.selectors import AccountCutoff

log = logging.getLogger(__name__)

# The bound of an account whose archive failed: every row of it is kept.
KEEP_ALL = datetime(1, 1, 2, tzinfo=UTC)


def purge_file_name(slug: str, month: str, run_id: int, attempt: int = 1) -> str:
    suffix = "" if attempt == 1 else f"-{attempt}"
    return f"{slug}/{slug}-{month}.purge-{run_id}{suffix}.ndjson.gz"


def _months(c: AccountCutoff) -> Iterator[tuple[str, datetime, datetime]]:
    """(month, start, end) of each UTC month from the account's oldest row to its cutoff,
    `end` the cutoff in its month: the ranges the run deletes, one file each."""
    oldest = request_logs(account=c.account).filter(timestamp__lt=c.cutoff).order_by("timestamp", "id").first()
    if oldest is None:
        return
    month = oldest.timestamp.astimezone(UTC).strftime("%Y-%m")
    while True:
        start, end = archive.month_bounds(month)
        yield month, start, min(end, c.cutoff)
        if end >= c.cutoff:
            return
        month = end.strftime("%Y-%m")


def _write_verified(to_dir: Path, *, c: AccountCutoff, run_id: int, month: str, start, end) -> dict | None:
    """Write the account's rows of [start, end) to a new purge file, read it back and check
    it; its manifest entry, or None when the range has no rows (a month with none)."""
    chunks = archive.rows_between(account=c.account, start=start, end=end)
    first = next(chunks, None)
    if first is None:
        return None
    slug = c.account.slug
    (to_dir / slug).mkdir(exist_ok=True)
    seen = {"first": first[0].timestamp, "last": first[-1].timestamp}

    def rows():
        yield first
        for chunk in chunks:
            seen["last"] = chunk[-1].timestamp
            yield chunk

    written = {}

    def write(raw) -> None:
        written["rows"], written["bytes"], written["sha256"] = archive.write_gzip_rows(raw, rows())

    # A purge file is never replaced: the first free name (a taken one means a database
    # restored with older run ids). write_new refuses a name taken since (a race): the
    # account then fails this run and is retried by the next.
    names = (purge_file_name(slug, month, run_id, attempt) for attempt in range(1, 100))
    name = next((n for n in names if not (to_dir / n).exists()), None)
    if name is None:
        raise archive.ArchiveError(f"no free file name for {purge_file_name(slug, month, run_id)}")
    archive.write_new(to_dir / name, write)
    entry = {
        "account": slug,
        "month": month,
        "rows": written["rows"],
        "file": name,
        "bytes": written["bytes"],
        "sha256": written["sha256"],
        "created_at": format_timestamp(timezone.now()),
        "kind": "purge",
        "purge_run": run_id,
        "cutoff": format_timestamp(c.cutoff),
        "first": format_timestamp(seen["first"]),
        "last": format_timestamp(seen["last"]),
    }
    problems = archive.check_file(to_dir / name, name, entry)
    if problems:
        (to_dir / name).unlink(missing_ok=True)
        raise archive.ArchiveError("verify failed: " + "; ".join(problems))
    return entry


@dataclass
class _Progress:
    """Shared by the accounts of one run: the directory (prepared on first use, so a run
    with nothing to delete needs none), whether a file was written, when to stop."""

    stop_at: float
    to_dir: Path | None = None
    wrote: bool = False


def _archive_account(c: AccountCutoff, *, run_id: int, progress: _Progress) -> tuple[list[dict], datetime | None]:
    """Archive the account's rows older than its cutoff, a month file at a time; (entries,
    None), or (entries, bound) when the archive's time ran out first: only the rows before
    `bound` are archived."""
    entries = []
    for month, start, end in _months(c):
        # At least one file per run, so a backlog bigger than the time share still shrinks.
        if progress.wrote and time.monotonic() >= progress.stop_at:
            return entries, start
        if progress.to_dir is None:
            progress.to_dir = archive.prepare_dir(settings.METERLOG_ARCHIVE_DIR)
        to_dir = progress.to_dir
        entry = _write_verified(to_dir, c=c, run_id=run_id, month=month, start=start, end=end)
        if entry is None:
            continue
        try:
            archive.add_manifest_entries(to_dir, month, [entry])
        except (archive.ArchiveError, OSError):
            # Not listed, so not verifiable: the file goes; the rows stay in the table.
            (to_dir / entry["file"]).unlink(missing_ok=True)
            raise
        progress.wrote = True
        entries.append(entry)
    return entries, None


def archive_expired(
    run: PurgeRun, cutoffs: list[AccountCutoff], entries: dict, *, deadline: float
) -> dict[int, datetime]:
    """Archive what the run is about to delete, account by account, in at most half the
    time left before `deadline` (the rest is for the deletes). Fills each account's run
    entry ("archived": {"files", "rows"}; "archive_error"; "archived_until") and returns
    {account id: bound} for the accounts whose rows from `bound` on must stay this run:
    KEEP_ALL after a failure, the end of what was archived when the time share ran out.
    Does nothing (returns {}) when archiving is off or for a dry run."""
    if run.dry_run or not settings.METERLOG_ARCHIVE_BEFORE_PURGE:
        return {}
    held = {}
    progress = _Progress(stop_at=time.monotonic() + max(0.0, deadline - time.monotonic()) / 2)
    for c in cutoffs:
        entry = entries[c.account.pk]
        try:
            files, bound = _archive_account(c, run_id=run.pk, progress=progress)
        except (archive.ArchiveError, OSError) as exc:
            error = str(exc) if not getattr(exc, "filename", None) else f"cannot write {exc.filename}: {exc.strerror}"
            entry["archive_error"] = error
            held[c.account.pk] = KEEP_ALL
            log.error("purge run %s: archive of %s failed, its rows are kept: %s", run.pk, c.account.slug, error)
            continue
        entry["archived"] = {"files": [f["file"] for f in files], "rows": sum(f["rows"] for f in files)}
        if bound is not None:
            held[c.account.pk] = bound
            entry["archived_until"] = bound.isoformat()
    return held


def bounded(c: AccountCutoff, held: dict[int, datetime]) -> AccountCutoff:
    """The cutoff the deletes may use for the account: its own, or the archive's bound."""
    bound = held.get(c.account.pk)
    return c if bound is None or bound >= c.cutoff else replace(c, cutoff=bound)


def keepers(held: dict[int, datetime]) -> list[tuple[int, datetime]]:
    """(account id, bound) pairs for deletes.keeps_rows: the rows from `bound` on stay."""
    return list(held.items())


def finish(run: PurgeRun, held: dict[int, datetime]) -> None:
    """After the deletes: a run with a failed archive is "failed", its error naming each
    account and why; one whose archive ran out of time is "partial" (the next run goes on).
    An account that lost more rows than were archived (rows past its cutoff ingested while
    the run went, or a table a dead run detached and this one dropped) is flagged
    "unarchived" in its entry."""
    for entry in run.accounts:
        archived = entry.get("archived")
        if archived is not None and entry.get("deleted", 0) > archived["rows"]:
            entry["unarchived"] = entry["deleted"] - archived["rows"]
            log.warning("purge run %s: %s lost %d rows not in its archive", run.pk, entry["slug"], entry["unarchived"])
    failed = [e for e in run.accounts if "archive_error" in e]
    if failed:
        details = "; ".join(f"{e['slug']}: {e['archive_error']}" for e in failed)
        run.status = PurgeStatus.FAILED
        run.error = f"archive before purge failed, these accounts' rows were kept: {details}"
    elif held and run.status == PurgeStatus.DONE:
        run.status = PurgeStatus.PARTIAL


def summary(run: PurgeRun) -> dict | None:
    """{"files", "rows", "failed"} over the run's accounts; None when nothing was archived
    or attempted (archiving off, dry run)."""
    archived = [e["archived"] for e in run.accounts if "archived" in e]
    failed = [e["slug"] for e in run.accounts if "archive_error" in e]
    if not archived and not failed:
        return None
    return {
        "files": sum(len(a["files"]) for a in archived),
        "rows": sum(a["rows"] for a in archived),
        "failed": failed,
    }
