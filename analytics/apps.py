from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from django.db.backends.signals import connection_created

        from analytics.key_days import key_days
        from analytics.log_totals import rollup_totals
        from analytics.rollups.rebuild import rebuild
        from analytics.rollups.retention import purge_old_rollups
        from analytics.sqlite_functions import register
        from analytics.tasks import on_account_zone_changed
        from console.signals import account_zone_changed
        from logs.deletions.services import register_rollup_rebuild
        from logs.key_views import register_key_days
        from logs.retention.services import register_rollup_purge
        from logs.selectors import register_rollup_totals

        connection_created.connect(register, dispatch_uid="analytics.sqlite_functions")
        # The console saves account settings without importing analytics; a changed
        # reporting zone reaches the rollups through this signal.
        account_zone_changed.connect(on_account_zone_changed, dispatch_uid="analytics.zone_changed")
        # The log list's totals bar (logs) reads the rollups past its cap through this reader.
        register_rollup_totals(rollup_totals)
        # The retention purge (logs) purges the rollups by their own period in the same run.
        register_rollup_purge(purge_old_rollups)
        # A deletion request (logs) rebuilds the rollups of the days it deleted rows from.
        register_rollup_rebuild(rebuild)
        # The API keys page (logs) draws each key's 30-day sparkline from the rollups.
        register_key_days(key_days)
