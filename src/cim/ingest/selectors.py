"""Reads of imports that the wizard and the API share."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from cim.accounts.roles import Role
from cim.ingest.models import ImportJob


def import_job_list(*, user) -> QuerySet[ImportJob]:
    """The imports a user may see: their own; administrators see everyone's."""
    if user.role == Role.ADMINISTRATOR:
        return ImportJob.objects.all()
    return ImportJob.objects.filter(created_by=user)


def import_job_get(*, user, pk: int) -> ImportJob:
    """One import the user may see (404 otherwise)."""
    return get_object_or_404(import_job_list(user=user), pk=pk)
