from django.db import migrations, models
from django.utils import timezone


def key_slices_start_now(apps, schema_editor):
    """Accounts with rows already rolled up have no API-key slices for them: key-filtered
    queries read those slots raw until `rebuild_rollups` fills them (it moves the time back)."""
    apps.get_model("analytics", "RollupState").objects.update(key_slices_since=timezone.now())


def drop_key_rows(apps, schema_editor):
    """Going back: the older code neither reads nor keeps API-key slices and minutes."""
    apps.get_model("analytics", "UsageSlice").objects.filter(dimension=2).delete()
    apps.get_model("analytics", "UsageMinute").objects.filter(dimension=2).delete()


class Migration(migrations.Migration):
    dependencies = [("analytics", "0004_usage_slices")]

    operations = [
        migrations.AddField(
            model_name="rollupstate",
            name="key_slices_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="usageslice",
            name="dimension",
            field=models.PositiveSmallIntegerField(choices=[(1, "model"), (2, "API key"), (3, "status")]),
        ),
        migrations.RunPython(key_slices_start_now, drop_key_rows),
    ]
