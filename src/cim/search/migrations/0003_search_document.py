"""One search document per customer instead of ~36 key rows: an FTS5 table on SQLite, a tsvector on PostgreSQL."""

from django.db import migrations, models

import cim.search.models

# prefix='1 2': one- and two-character prefixes (陈, zh) read one list; longer ones merge few terms (see tokens).
# detail=none: no positions, since queries are AND/OR of tokens; the ascii tokenizer keeps every non-ASCII
# character (Chinese, the marks) inside a token.
SQLITE = (
    "CREATE VIRTUAL TABLE search_document USING fts5("
    "tokens, prefix='1 2', detail=none, columnsize=0, tokenize='ascii')"
)
POSTGRESQL = (
    "CREATE TABLE search_document (rowid bigint PRIMARY KEY, tokens tsvector NOT NULL);"
    "CREATE INDEX search_document_tokens_idx ON search_document USING gin (tokens);"
)


def create_table(apps, schema_editor):
    schema_editor.execute(POSTGRESQL if schema_editor.connection.vendor == "postgresql" else SQLITE)


def drop_table(apps, schema_editor):
    schema_editor.execute("DROP TABLE search_document")


def fill(apps, schema_editor):
    from cim.search.tokens import document

    customers = apps.get_model("customers", "Customer").objects.order_by("pk")
    contacts: dict[str, dict[int, list[str]]] = {"phones": {}, "emails": {}}
    for kind, model, column in (("phones", "Phone", "number"), ("emails", "Email", "address")):
        for customer_id, value in apps.get_model("customers", model).objects.values_list("customer_id", column):
            contacts[kind].setdefault(customer_id, []).append(value)
    rows = (
        (
            c["pk"],
            document(
                names=[c["display_name"], c["family_name"] + c["given_name"], c["alias"], c["english_name"], c["company"]],
                phones=contacts["phones"].get(c["pk"], []),
                emails=contacts["emails"].get(c["pk"], []),
            ),
        )
        for c in customers.values("pk", "display_name", "family_name", "given_name", "alias", "english_name", "company")
    )
    with schema_editor.connection.cursor() as cursor:
        cursor.executemany("INSERT INTO search_document (rowid, tokens) VALUES (%s, %s)", list(rows))


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0003_contact_match_keys"),
        ("search", "0002_search_key_customer_kind_key"),
    ]

    operations = [
        migrations.DeleteModel(name="SearchKey"),
        migrations.CreateModel(
            name="SearchDocument",
            fields=[
                (
                    "customer",
                    models.OneToOneField(
                        db_column="rowid",
                        db_constraint=False,
                        on_delete=models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="search_document",
                        serialize=False,
                        to="customers.customer",
                        verbose_name="customer",
                    ),
                ),
                ("tokens", cim.search.models.SearchTokensField(verbose_name="tokens")),
            ],
            options={
                "verbose_name": "search document",
                "verbose_name_plural": "search documents",
                "db_table": "search_document",
                "ordering": ["customer"],
                "managed": False,
            },
        ),
        migrations.RunPython(create_table, drop_table),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
