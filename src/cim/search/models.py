from django.db import models
from django.utils.translation import gettext_lazy as _


class SearchKey(models.Model):
    """One search key of a customer. Text keys are matched by prefix; hashed keys (phones, emails) exactly.

    A B-tree on (kind, key) answers every query kind in a range scan, identically on SQLite and PostgreSQL:
    1–2 character Chinese queries included, which trigram indexes cannot serve.
    """

    class Kind(models.IntegerChoices):
        TEXT = 1, _("text")
        HASH = 2, _("keyed hash")

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.PositiveSmallIntegerField(_("kind"), choices=Kind.choices)
    key = models.CharField(_("key"), max_length=64)

    class Meta:
        verbose_name = _("search key")
        verbose_name_plural = _("search keys")
        ordering = ["kind", "key"]
        indexes = [
            # PostgreSQL needs the pattern operator class for `LIKE 'prefix%'` to use the index in any collation.
            models.Index(
                fields=["kind", "key", "customer"],
                name="search_key_idx",
                opclasses=["int2_ops", "varchar_pattern_ops", "int8_ops"],
            ),
            # Covers "has this customer a key in this range?", the probe that serves common words (search_filter).
            models.Index(fields=["customer", "kind", "key"], name="search_key_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.key
