"""The API tokens: shown, never created here."""

from django.contrib import admin

from ..models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "name", "created_at", "last_used_at"]
    readonly_fields = ["user", "created_at", "last_used_at"]
    fields = ["user", "name", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False  # tokens are created by `manage.py create_api_token`, shown once
