"""django-import-export resource for Account in the Django admin.

Accounts are identified by slug: importing a file updates the accounts it names and creates
the new ones; model validation (tier choices, IANA time zone, retention bounds) runs on every
row, so an invalid value is a row error and nothing of that import is written.
"""

from import_export import resources

from console.models import Account


class AccountResource(resources.ModelResource):
    class Meta:
        model = Account
        fields = ("slug", "name", "tier", "retention_days_override", "timezone", "privacy_mode")
        export_order = fields
        import_id_fields = ("slug",)
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = True
