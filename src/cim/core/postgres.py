"""How times reach PostgreSQL: in UTC. A time may carry any offset up to ±23:59 (RFC 3339 and Python allow it),
while PostgreSQL refuses one beyond ±15:59 ("time zone displacement out of range"); the instant is the same."""

from datetime import UTC, datetime

from psycopg.types.datetime import DatetimeDumper


class UtcDatetimeDumper(DatetimeDumper):
    def dump(self, obj):
        return super().dump(obj.astimezone(UTC))


def utc_datetimes(sender, connection, **kwargs) -> None:
    """On each new PostgreSQL connection (`connection_created`), aware times are written in UTC."""
    if connection.vendor == "postgresql":
        connection.connection.adapters.register_dumper(datetime, UtcDatetimeDumper)
