"""Ingest: from a gateway's HTTP body to stored request-log rows.

parsing.py decodes the body (gzip, JSON array or NDJSON) under hard size limits,
validation.py turns one raw record into clean values or per-field errors,
services.py stores a batch (dedup, pricing, COPY), litellm.py maps LiteLLM's payload.
"""
