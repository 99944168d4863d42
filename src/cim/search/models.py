from django.db import models
from django.db.models import Lookup
from django.utils.translation import gettext_lazy as _


class SearchTokensField(models.TextField):
    """A search document's tokens (see `cim.search.tokens`): an FTS5 column on SQLite, a tsvector on PostgreSQL."""

    def db_type(self, connection):
        return "tsvector" if connection.vendor == "postgresql" else "text"


@SearchTokensField.register_lookup
class Match(Lookup):
    """`tokens__match=expression`, in the backend's own syntax (see `cim.search.backends`)."""

    lookup_name = "match"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} @@ ({rhs})::tsquery", [*lhs_params, *rhs_params]
        # FTS5 matches through the hidden column named after the table: detail=none has no column filters.
        quote = connection.ops.quote_name
        return f"{quote(self.lhs.alias)}.{quote(self.lhs.target.model._meta.db_table)} MATCH {rhs}", rhs_params


@SearchTokensField.register_lookup
class MatchEach(Match):
    """`tokens__match_each=expression`: the same match, which PostgreSQL tests row by row and cannot answer from
    the GIN index (see `cim.search.selectors`). For a word so common that reading rows until enough match is
    quicker than reading every match from the index."""

    lookup_name = "match_each"

    def process_lhs(self, compiler, connection, lhs=None):
        sql, params = super().process_lhs(compiler, connection, lhs)
        return (f"({sql} || ''::tsvector)" if connection.vendor == "postgresql" else sql), params


class SearchDocument(models.Model):
    """The search tokens of one customer, one row each: an FTS5 table on SQLite, a GIN-indexed tsvector on
    PostgreSQL (both made by the migration, hence unmanaged). Its row id is the customer's id."""

    customer = models.OneToOneField(
        "customers.Customer",
        verbose_name=_("customer"),
        primary_key=True,
        db_column="rowid",
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="search_document",
    )
    tokens = SearchTokensField(_("tokens"))

    class Meta:
        managed = False
        db_table = "search_document"
        verbose_name = _("search document")
        verbose_name_plural = _("search documents")
        ordering = ["customer"]

    def __str__(self) -> str:
        return str(self.customer_id)
