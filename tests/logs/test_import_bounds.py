"""Imported rows past what their column holds are rejected by line, the rest imported
(issue "Hardening"): an overflowing cost used to fail the whole batch of 1,000 rows on
PostgreSQL, and a new-api use_time of 1e308 or NaN crashed the import."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from logs.exports.format import EXPORT_FIELDS
from logs.imports.services import import_file
from logs.models import ImportJob, RequestLog
from logs.partitions import forget_known_partitions
from logs.tasks import run_import_job

pytestmark = pytest.mark.django_db
ROUNDS_OVER = "999999999999.9999999999995"


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    forget_known_partitions()


@pytest.fixture
def import_dir(settings, tmp_path):
    settings.METERLOG_IMPORT_DIR = tmp_path / "imports"
    return settings.METERLOG_IMPORT_DIR


def meterlog_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def row(n: int, **fields) -> dict:
    base = {
        "request_id": f"imp-{n}",
        "timestamp": f"2026-11-20T12:00:{n:02d}Z",
        "model": "gpt-4o-mini",
        "status": "success",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cost": "0.000027",
        "api_key": "team-a",
    }
    base.update(fields)
    return base


def stored(account) -> dict[str, RequestLog]:
    return {r.request_id: r for r in RequestLog.objects.filter(account=account)}


def test_overflowing_cost_in_an_uploaded_file_rejects_that_row_only(
    client, acme, alice, import_dir, django_capture_on_commit_callbacks
):
    data = meterlog_csv(
        [
            row(1),
            row(2, cost=ROUNDS_OVER),
            row(3, latency_ms="2147483648"),
            row(4, api_key=" Bearer sk-live-abcdefghijklmnop1234"),
        ]
    )
    client.force_login(alice)
    with django_capture_on_commit_callbacks():
        response = client.post("/imports/", {"file": SimpleUploadedFile("logs.csv", data), "format": "auto"})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert run_import_job(job.pk) == 2
    job.refresh_from_db()
    assert (job.state, job.rows, job.accepted, job.rejected_count) == ("done", 4, 2, 2)
    assert [(r["line"], r["request_id"], list(r["errors"])) for r in job.rejected] == [
        (3, "imp-2", ["cost"]),
        (4, "imp-3", ["latency_ms"]),
    ]
    rows = stored(acme)
    assert sorted(rows) == ["imp-1", "imp-4"]
    assert rows["imp-4"].api_key == "sk-…1234"
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "imp-2" in page and "cost" in page


def test_new_api_absurd_use_time_and_quota_are_rejected_by_name(acme, tmp_path):
    def entry(n: int, **fields) -> dict:
        base = {"id": n, "created_at": 1795392000 + n, "type": 2, "model_name": "gpt-4o-mini", "quota": 1500,
                "prompt_tokens": 800, "completion_tokens": 100, "use_time": 2}  # fmt: skip
        base.update(fields)
        return base

    entries = [
        entry(1),
        entry(2, use_time=1.7e308),
        entry(3, use_time=float("nan")),
        entry(4, quota="1e30"),  # 2e24 $ at 500,000 quota per $
        entry(5, quota="1e999999999"),  # past Decimal's exponent range once divided
        entry(6, use_time=2147483.647),  # the column's last millisecond
    ]
    path = tmp_path / "logs.json"
    path.write_text(json.dumps(entries))  # NaN as the bare word, as Python writes it
    report = import_file(account=acme, path=path, fmt="new-api", quota_per_usd=Decimal(500000))
    assert (report.rows, report.accepted, report.rejected_count) == (6, 2, 4)
    assert [(r["request_id"], list(r["errors"])) for r in report.rejected] == [
        ("newapi-2", ["latency_ms"]),
        ("newapi-3", ["latency_ms"]),
        ("newapi-4", ["cost"]),
        ("newapi-5", ["cost"]),
    ]
    rows = stored(acme)
    assert sorted(rows) == ["newapi-1", "newapi-6"]
    assert (rows["newapi-1"].latency_ms, rows["newapi-6"].latency_ms) == (2000, 2**31 - 1)
    assert rows["newapi-1"].cost == Decimal("0.003")


def test_litellm_spend_log_with_overflowing_spend_and_absurd_end_time(acme, tmp_path):
    header = "request_id,call_type,api_key,spend,total_tokens,prompt_tokens,completion_tokens,startTime,endTime,model"
    lines = [
        header,
        "ll-1,acompletion,hash-1,0.001,15,10,5,2026-11-22 08:30:01.120,2026-11-22 08:30:02.455,gpt-4o",
        f"ll-2,acompletion,hash-1,{ROUNDS_OVER},15,10,5,2026-11-22 08:30:01.120,2026-11-22 08:30:02.455,gpt-4o",
        "ll-3,acompletion,hash-1,0.001,15,10,5,2026-11-22 08:30:01.120,1.7e308,gpt-4o",
        "ll-4,acompletion,hash-1,0.001,15,10,5,1.7e308,1.7e308,gpt-4o",
    ]
    path = tmp_path / "spend.csv"
    path.write_text("\n".join(lines) + "\n")
    report = import_file(account=acme, path=path, fmt="litellm")
    assert (report.rows, report.accepted, report.rejected_count) == (4, 2, 2)
    assert [(r["line"], list(r["errors"])) for r in report.rejected] == [(3, ["cost"]), (5, ["timestamp"])]
    rows = stored(acme)
    assert sorted(rows) == ["ll-1", "ll-3"]
    assert (rows["ll-1"].latency_ms, rows["ll-3"].latency_ms) == (1335, None)  # only the latency dropped
