"""Monthly archives of the request log: one gzip NDJSON file per account and month plus a
checksum manifest per month (`manage.py archive_logs` / `verify_archive`, README "Backups").

Layout under the target directory:

    DIR/manifest-2026-10.json          one manifest per month, all accounts of that month
    DIR/acme/acme-2026-10.ndjson.gz    one file per account and month
    DIR/acme/acme-2026-10.purge-42.ndjson.gz
                                       the rows purge run 42 deleted of that month (written
                                       before the delete, never overwritten: see
                                       logs/retention/archiving.py)

A file is Meterlog's own NDJSON export (keys in EXPORT_FIELDS order, values as the API's
`log_record` renders them), oldest row first, so `import_logs ACCOUNT FILE --format
meterlog-ndjson` restores it. Rows are read in keyset chunks through `request_logs`, the
tenant gate, so memory stays flat for any month. Files and manifests are written to a temp
file in the same directory and moved into place with os.replace: a crash leaves either the
previous complete file or a dot-named `.tmp` file, never a truncated file under the real name.
The gzip header carries no time stamp or name, so re-archiving unchanged rows gives
byte-identical files (and the same sha256).
"""

import fcntl
import gzip
import hashlib
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db.models import Q
from django.utils import timezone

from console.models import Account
from logs.api.serializers import format_timestamp, log_record
from logs.exports.format import EXPORT_FIELDS
from logs.selectors import request_logs

CHUNK_SIZE = 1000
ARCHIVE_FORMAT = "meterlog-ndjson"
ORDER = "oldest first (timestamp, id)"
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ArchiveError(Exception):
    """A problem the caller can fix (bad month, unwritable directory, bad manifest)."""


@dataclass
class ArchiveFile:
    account: str
    month: str
    rows: int
    file: str | None = None  # relative to the archive directory; None when the month had no rows
    bytes: int = 0
    sha256: str | None = None
    created_at: str | None = None


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant of the month, first instant of the next month) in UTC."""
    match = _MONTH.match(month or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ArchiveError(f"month must be YYYY-MM (for example 2026-10), got {month!r}")
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def archive_name(slug: str, month: str) -> str:
    return f"{slug}/{slug}-{month}.ndjson.gz"


def manifest_path(to_dir: Path | str, month: str) -> Path:
    return Path(to_dir) / f"manifest-{month}.json"


def prepare_dir(to_dir: Path | str) -> Path:
    """Create the directory if needed and prove it is writable by writing a probe file
    (os.access says yes to root even on a read-only mount)."""
    path = Path(to_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ArchiveError(f"cannot write to {path}: {exc.strerror or exc}") from exc
    return path


def month_rows(*, account: Account, month: str) -> Iterator[list]:
    """The account's rows of the month in chunks, oldest first, by keyset (timestamp, id)."""
    start, end = month_bounds(month)
    return rows_between(account=account, start=start, end=end)


def rows_between(*, account: Account, start: datetime | None, end: datetime) -> Iterator[list]:
    """The account's rows in [start, end) (from the oldest when start is None) in chunks,
    oldest first: a month, or what the purge deletes of it for a cutoff."""
    rows = request_logs(account=account).filter(timestamp__lt=end)
    return keyset_chunks(rows if start is None else rows.filter(timestamp__gte=start))


def keyset_chunks(queryset) -> Iterator[list]:
    base = queryset.order_by("timestamp", "id")
    last = None
    while True:
        queryset = base
        if last is not None:
            # "timestamp >= t" is the bound the index seeks to; the OR drops the rows already read.
            queryset = base.filter(
                Q(timestamp__gte=last.timestamp) & (Q(timestamp__gt=last.timestamp) | Q(id__gt=last.pk))
            )
        rows = list(queryset[:CHUNK_SIZE])
        if not rows:
            return
        yield rows
        if len(rows) < CHUNK_SIZE:
            return
        last = rows[-1]


def encode_row(row) -> bytes:
    record = log_record(row)
    return (json.dumps({name: record[name] for name in EXPORT_FIELDS}, ensure_ascii=False) + "\n").encode()


class _HashingWriter:
    """The file object under GzipFile: hashes and counts the compressed bytes on the way out."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _write_temp(target: Path, write: Callable, place: Callable[[str, Path], None]) -> None:
    """Call write(file) on a temp file next to `target`, fsync it, then place(temp, target);
    the temp file never outlives the call."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            write(raw)
            raw.flush()
            os.fsync(raw.fileno())
        place(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)


def _atomic_write(target: Path, write: Callable) -> None:
    """Write `target` through a temp file moved over it."""
    _write_temp(target, write, os.replace)


def write_new(target: Path, write: Callable) -> None:
    """Like _atomic_write, but never replaces a file: FileExistsError when `target` exists
    (a hard link of the complete temp file is the atomic "create if absent")."""
    _write_temp(target, write, os.link)
    # The new name must survive a crash too: the purge deletes the rows once this returns.
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_gzip_rows(raw, chunks: Iterable[list]) -> tuple[int, int, str]:
    """Write the rows as gzip NDJSON to `raw`: (rows, compressed bytes, sha256)."""
    hashing = _HashingWriter(raw)
    rows = 0
    with gzip.GzipFile(filename="", mode="wb", fileobj=hashing, mtime=0) as archive:
        for chunk in chunks:
            archive.write(b"".join(encode_row(row) for row in chunk))
            rows += len(chunk)
    return rows, hashing.size, hashing.sha256.hexdigest()


def archive_month(*, account: Account, month: str, to_dir: Path | str) -> ArchiveFile:
    """Write DIR/<slug>/<slug>-<month>.ndjson.gz; no file (rows=0) when the month is empty.
    Does not touch the manifest: see `archive_accounts` / `update_manifest`."""
    chunks = month_rows(account=account, month=month)
    first = next(chunks, None)
    if first is None:
        return ArchiveFile(account=account.slug, month=month, rows=0)
    name = archive_name(account.slug, month)
    target = Path(to_dir) / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    result = ArchiveFile(account=account.slug, month=month, rows=0, file=name)

    def write(raw) -> None:
        result.rows, result.bytes, result.sha256 = write_gzip_rows(raw, _prepend(first, chunks))

    _atomic_write(target, write)
    result.created_at = format_timestamp(timezone.now())
    return result


def _prepend(first: list, rest: Iterable[list]) -> Iterator[list]:
    yield first
    yield from rest


def read_manifest(to_dir: Path | str, month: str) -> dict | None:
    path = manifest_path(to_dir, month)
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"{path.name} is not a readable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ArchiveError(f"{path.name} is not a Meterlog archive manifest (no 'files' list)")
    return manifest


def _entry_key(entry: dict) -> tuple:
    # A month file is one per account (re-archiving replaces it); a purge file is its own.
    if entry.get("kind") == "purge":
        return ("purge", entry.get("file"))
    return ("month", entry.get("account"))


@contextmanager
def _manifest_lock(to_dir: Path | str):
    """Serialise read-modify-write of the manifests (archive_logs and a purge may share DIR):
    an flock on the directory itself, so no lock file is left in it."""
    fd = os.open(to_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def update_manifest(to_dir: Path | str, month: str, archived: Iterable[ArchiveFile]) -> dict:
    """Merge the new files into DIR/manifest-<month>.json: an account archived again replaces
    its entry, other accounts' entries (an earlier --account run) and purge files are kept."""
    return add_manifest_entries(to_dir, month, [asdict(item) for item in archived if item.file is not None])


def add_manifest_entries(to_dir: Path | str, month: str, new_entries: list[dict]) -> dict:
    """Add entries (dicts with at least account, file, rows, bytes, sha256) to the month's
    manifest, replacing an entry with the same key (_entry_key)."""
    with _manifest_lock(to_dir):
        previous = read_manifest(to_dir, month) or {"files": []}
        entries = {_entry_key(entry): entry for entry in previous["files"] if isinstance(entry, dict)}
        for entry in new_entries:
            entries[_entry_key(entry)] = entry
        manifest = {
            "format": ARCHIVE_FORMAT,
            "format_version": list(EXPORT_FIELDS),
            "month": month,
            "order": ORDER,
            "updated_at": format_timestamp(timezone.now()),
            # The month file first, then the account's purge files by name.
            "files": sorted(
                entries.values(), key=lambda e: (str(e.get("account")), e.get("kind") == "purge", str(e.get("file")))
            ),
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        _atomic_write(manifest_path(to_dir, month), lambda raw: raw.write(text.encode()))
    return manifest


def archive_accounts(
    *,
    accounts: Iterable[Account],
    month: str,
    to_dir: Path | str,
    progress: Callable[[ArchiveFile], None] | None = None,
) -> list[ArchiveFile]:
    """Archive each account's month, then write the month's manifest once."""
    month_bounds(month)
    to_dir = prepare_dir(to_dir)
    archived = []
    for account in accounts:
        item = archive_month(account=account, month=month, to_dir=to_dir)
        archived.append(item)
        if progress is not None:
            progress(item)
    update_manifest(to_dir, month, archived)
    return archived


def _sha256_and_size(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def _count_lines(path: Path) -> int:
    lines = 0
    with gzip.open(path, "rb") as archive:
        for block in iter(lambda: archive.read(1 << 20), b""):
            lines += block.count(b"\n")
    return lines


def verify_manifest(to_dir: Path | str, month: str) -> tuple[int, list[str]]:
    """(files checked, problems) for one month's manifest; each problem names its file."""
    to_dir = Path(to_dir)
    manifest = read_manifest(to_dir, month)
    if manifest is None:
        raise ArchiveError(f"no manifest for {month} in {to_dir} (expected {manifest_path(to_dir, month).name})")
    problems = []
    root = to_dir.resolve()
    for entry in manifest["files"]:
        name = entry.get("file") if isinstance(entry, dict) else None
        target = (to_dir / name).resolve() if isinstance(name, str) else None
        if target is None or not target.is_relative_to(root):
            problems.append(f"manifest-{month}.json: bad entry {entry!r}")
            continue
        problems.extend(check_file(target, name, entry))
    return len(manifest["files"]), problems


def check_file(target: Path, name: str, entry: dict) -> list[str]:
    """Problems of one file against its manifest entry: missing, sha256, size, row count."""
    if not target.is_file():
        return [f"{name}: missing"]
    problems = []
    sha, size = _sha256_and_size(target)
    if sha != entry.get("sha256"):
        problems.append(f"{name}: sha256 {sha} does not match the manifest's {entry.get('sha256')}")
    if size != entry.get("bytes"):
        problems.append(f"{name}: {size} bytes, the manifest says {entry.get('bytes')}")
    try:
        lines = _count_lines(target)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        return [*problems, f"{name}: not a readable gzip file ({exc})"]
    if lines != entry.get("rows"):
        problems.append(f"{name}: {lines} rows, the manifest says {entry.get('rows')}")
    return problems


def archived_months(to_dir: Path | str) -> list[str]:
    """The months that have a manifest in the directory, oldest first."""
    months = []
    for path in Path(to_dir).glob("manifest-*.json"):
        month = path.name[len("manifest-") : -len(".json")]
        if _MONTH.match(month):
            months.append(month)
    return sorted(months)
