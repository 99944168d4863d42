"""The PostgreSQL restore script: the drops a partition refuses are left out, and nothing else."""

from cim.backups.engines import _partition_key_drops_removed

SCRIPT = [
    b"ALTER TABLE IF EXISTS ONLY public.audit_auditevent_y2027m01 DROP CONSTRAINT IF EXISTS partition_pkey;\n",
    b"ALTER TABLE IF EXISTS ONLY public.customers_phone DROP CONSTRAINT IF EXISTS customers_phone_pkey;\n",
    b"DROP TABLE IF EXISTS public.audit_auditevent_y2027m01;\n",
    b"COPY public.customers_customer (id, notes) FROM stdin;\n",
    b"1\tALTER TABLE IF EXISTS ONLY public.audit_auditevent_y2027m01 DROP CONSTRAINT x;\n",
    b"\\.\n",
    b"ALTER TABLE IF EXISTS ONLY public.audit_auditevent_y2027m01 DROP CONSTRAINT IF EXISTS audit_seq_key;\n",
]


def test_only_the_key_drops_of_partitions_are_left_out():
    kept = list(_partition_key_drops_removed(iter(SCRIPT), {b"audit_auditevent_y2027m01"}))

    assert kept == SCRIPT[1:6]
