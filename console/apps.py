from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console and accounts"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from console import zones

        # The zone choice enters the session at login, so no page queries it later.
        user_logged_in.connect(zones.remember_choice_at_login, dispatch_uid="console.zones.login")
