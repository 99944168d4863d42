"""Signals between apps that must not import each other."""

from django.dispatch import Signal

# Sent by a restore once the restored database is in place, before it is used: privacy replays the erasures
# made since the backup was taken, so an erased customer never comes back.
database_restored = Signal()
