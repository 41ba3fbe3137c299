"""The console's import page (owners only): upload a file of usage logs, follow the job.

/imports/ takes the upload (the formats of `manage.py import_logs`), /imports/<id>/ shows a
job's progress, counts and first rejected rows, /imports/<id>/progress/ is what the page
polls. The work is in logs.imports.jobs; jobs of another account answer 404.
"""

from decimal import Decimal

from django import forms
from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat

from console.tenancy import require_account
from logs.imports import jobs
from logs.imports.services import FORMATS
from logs.models import ImportJob

JOBS_SHOWN = 50
FORMAT_LABELS = {
    "auto": "Detect from the columns",
    "meterlog-csv": "Meterlog export, CSV",
    "meterlog-ndjson": "Meterlog export, NDJSON or JSON",
    "litellm": "LiteLLM spend logs",
    "new-api": "new-api / one-api logs",
}


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, JSON or NDJSON, optionally gzip-compressed.")
    format = forms.ChoiceField(choices=[(name, FORMAT_LABELS.get(name, name)) for name in FORMATS], initial="auto")
    quota_per_usd = forms.DecimalField(
        required=False,
        min_value=Decimal("0.000001"),
        max_digits=20,
        decimal_places=6,
        label="Quota per USD (new-api)",
        help_text="new-api only: cost = quota / this (new-api's default is 500000). Empty: priced by Meterlog.",
    )


def _get_job_for_account(request, pk: int) -> ImportJob:
    job = ImportJob.objects.filter(account=request.account, pk=pk).first()
    if job is None:
        raise Http404("No such import")
    return job


@require_account(min_role="owner")
def import_list(request):
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                job = jobs.start_import_job(
                    account=request.account,
                    user=request.user,
                    upload=form.cleaned_data["file"],
                    fmt=form.cleaned_data["format"],
                    quota_per_usd=form.cleaned_data["quota_per_usd"],
                )
            except jobs.UploadRefused as exc:
                too_large = form.cleaned_data["file"].size > settings.METERLOG_IMPORT_MAX_BYTES
                form.add_error("file", str(exc))
                status = 413 if too_large else 400
            else:
                return redirect("logs:import_detail", pk=job.pk)
        else:
            status = 400
    else:
        form = ImportForm()
    recent = ImportJob.objects.filter(account=request.account).select_related("user").order_by("-created_at", "-id")
    context = {
        "form": form,
        "jobs": list(recent[:JOBS_SHOWN]),
        "shown": JOBS_SHOWN,
        "max_size": filesizeformat(settings.METERLOG_IMPORT_MAX_BYTES),
    }
    return render(request, "logs/imports.html", context, status=status)


@require_account(min_role="owner")
def import_detail(request, pk: int):
    return render(request, "logs/imports_detail.html", {"job": _get_job_for_account(request, pk)})


@require_account(min_role="owner")
def import_progress(request, pk: int):
    job = _get_job_for_account(request, pk)
    response = JsonResponse(
        {
            "id": job.pk,
            "state": job.state,
            "rows": job.rows,
            "rows_estimate": job.rows_estimate,
            "percent": job.percent,
            "accepted": job.accepted,
            "duplicates": job.duplicates,
            "skipped": job.skipped,
            "rejected": job.rejected_count,
            "error": job.error,
        }
    )
    response["Cache-Control"] = "no-store"
    return response
