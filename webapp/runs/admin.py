from django.contrib import admin

from .models import Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "project", "kind", "method", "status", "best_mean_dice", "attempts", "created_at"]
    list_filter = ["status", "kind", "method"]
    search_fields = ["name", "project__name"]
    readonly_fields = [
        "status", "storage_key", "claim_token", "worker", "heartbeat_at", "attempts", "progress", "best_mean_dice", "genotype",
        "resolved_config", "estimate_details", "started_at", "finished_at", "status_changed_at",
    ]

    def has_add_permission(self, request):  # runs are launched through the pages and the API
        return False
