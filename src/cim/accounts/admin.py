from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from cim.accounts.models import ApiToken, Team, User


@admin.register(User)
class CimUserAdmin(UserAdmin):
    list_display = ("username", "get_full_name", "role", "team", "is_active", "last_login")
    list_filter = ("role", "team", "is_active")
    fieldsets = (*UserAdmin.fieldsets, (_("CIM"), {"fields": ("role", "team", "must_change_password")}))
    add_fieldsets = (*UserAdmin.add_fieldsets, (_("CIM"), {"fields": ("role", "team")}))


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "parent")
    search_fields = ("name",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `cim token create`; here they can be seen and revoked, never read back."""

    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("user", "name", "prefix", "digest", "created_at", "last_used_at")

    def has_add_permission(self, request):
        return False
