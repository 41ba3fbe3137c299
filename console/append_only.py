"""Append-only models (the access log, a deletion request's trail): a row is saved once and
never changed or deleted through the ORM, one row or in bulk. On PostgreSQL each such table
also has a trigger refusing UPDATE and DELETE, for raw SQL."""

from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError(f"{self.model._meta.verbose_name_plural} are append-only: never changed")

    def delete(self):
        raise PermissionError(f"{self.model._meta.verbose_name_plural} are append-only: never deleted")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError(f"{self._meta.verbose_name_plural} are append-only: never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{self._meta.verbose_name_plural} are append-only: never deleted")
