from django.db import models
from django.utils.translation import gettext_lazy as _


class PeriodicRun(models.Model):
    """When a periodic job was last queued: the row every worker compares-and-sets, so one queues it."""

    name = models.CharField(_("job"), max_length=100, unique=True)
    queued_at = models.DateTimeField(_("last queued at"))

    class Meta:
        verbose_name = _("periodic job run")
        verbose_name_plural = _("periodic job runs")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
