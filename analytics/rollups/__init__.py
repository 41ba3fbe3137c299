"""Maintaining the rollups (the writes; the reads are analytics.usage): from ingest (the new
rows of a batch, `add_ingested`) and from raw rows (`rebuild`).

Both paths go through the same steps, so a rebuild equals what ingest maintained: rows
become minute groups (fold.py), folded into quarter, slice and day rows and added to the
tables (write.py: sums add up, maxima keep the largest). rebuild.py recomputes windows of
days (in SQL on PostgreSQL: rebuild_sql.py); compact.py rewrites finished months in value
order and refreshes the tables' statistics.
"""

from analytics.rollups.compact import analyze, compact_month
from analytics.rollups.rebuild import RebuildResult, rebuild
from analytics.rollups.write import add_ingested, purge_minutes

__all__ = ["RebuildResult", "add_ingested", "analyze", "compact_month", "purge_minutes", "rebuild"]
