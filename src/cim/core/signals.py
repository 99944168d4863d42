"""Signals between apps that must not import each other."""

from django.dispatch import Signal

# Sent by a restore once the restored database is in place, before it is used: privacy replays the erasures
# made since the backup was taken, so an erased customer never comes back. Sent by cim.backups.services.
# backup_restore with sender=Backup and keyword arguments: taken_at (aware datetime of the snapshot), manifest (the
# backup's manifest dict), backup (its catalog row, or None) and actor (or None). A receiver that raises stops
# `cim restore` with an error after the data is restored: it must be idempotent, so running it again is safe.
database_restored = Signal()
