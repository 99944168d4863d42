"""Connects Django's auth and admin signals to the access events (see access.py)."""

from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from cim.audit import access


@receiver(user_logged_in, dispatch_uid="cim_audit_login")
def _logged_in(sender, request, user, **kwargs):
    access.login_record(user=user, request=request)


@receiver(user_logged_out, dispatch_uid="cim_audit_logout")
def _logged_out(sender, request, user, **kwargs):
    access.logout_record(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="cim_audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    access.login_failed_record(credentials=credentials, request=request)


@receiver(post_save, sender=LogEntry, dispatch_uid="cim_audit_admin_change")
def _admin_changed(sender, instance, created, **kwargs):
    if created:
        access.admin_change_record(entry=instance)
