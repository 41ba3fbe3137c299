from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from django.db.backends.signals import connection_created

        from analytics.sqlite_functions import register

        connection_created.connect(register, dispatch_uid="analytics.sqlite_functions")

        from analytics.log_totals import rollup_totals
        from logs.selectors import register_rollup_totals

        register_rollup_totals(rollup_totals)
