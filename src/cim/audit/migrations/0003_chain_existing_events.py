from django.db import migrations


def chain_existing(apps, schema_editor):
    # The chain's own function, so the links written here are the ones `cim audit verify` recomputes.
    from cim.audit.chain import chain_existing as link_all

    link_all(apps)


class Migration(migrations.Migration):
    """Link the events recorded before the chain, in the order they were written (by id)."""

    dependencies = [("audit", "0002_audit_chain")]

    operations = [migrations.RunPython(chain_existing, migrations.RunPython.noop)]
