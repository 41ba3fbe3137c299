"""Signals the console sends, so higher apps can react without console importing them."""

from django.dispatch import Signal

# Sent by console.services.account_update_settings after saving an account whose reporting
# zone changed; keyword argument `account`. analytics recomputes its daily figures
# (analytics.apps connects analytics.tasks.on_account_zone_changed).
account_zone_changed = Signal()
