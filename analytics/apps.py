from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from django.db.backends.signals import connection_created

        from analytics.sqlite_functions import register
        from analytics.tasks import on_account_zone_changed
        from console.signals import account_zone_changed

        connection_created.connect(register, dispatch_uid="analytics.sqlite_functions")
        # The console saves account settings without importing analytics; a changed
        # reporting zone reaches the rollups through this signal.
        account_zone_changed.connect(on_account_zone_changed, dispatch_uid="analytics.zone_changed")
