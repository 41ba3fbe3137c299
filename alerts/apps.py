from django.apps import AppConfig
from django.db.models.signals import post_save


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        # console must not import alerts: the receiver is connected from here.
        from alerts.defaults import account_created
        from console.models import Account

        post_save.connect(account_created, sender=Account, dispatch_uid="alerts.default_rules")
