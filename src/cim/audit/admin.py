from django.contrib import admin

from cim.audit.models import AuditEvent, FieldChange


class FieldChangeInline(admin.TabularInline):
    model = FieldChange
    extra = 0
    can_delete = False
    readonly_fields = ("field", "old_value", "new_value")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log is append-only: visible here, never editable."""

    list_display = ("seq", "at", "actor", "action", "target_type", "target_id", "request_id")
    list_filter = ("action", "target_type")
    search_fields = ("target_id", "request_id")
    inlines = [FieldChangeInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
