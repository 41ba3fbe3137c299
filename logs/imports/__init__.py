"""Bulk import of usage logs from files: Meterlog's own export, LiteLLM and new-api / one-api.

readers.py opens and streams the file, mappings.py turns each row into an ingest record,
services.py sends batches through `logs.ingest.services.ingest_records` (same validation,
same duplicate rule as the ingest API). The command is `manage.py import_logs`; jobs.py runs
an uploaded file as a Celery job and views.py is the console's import page.
"""
