from django.contrib import admin

from .models import Case, Dataset
from .services import dataset_purge


class CaseInline(admin.TabularInline):
    model = Case
    extra = 0
    fields = ["index", "case_id", "split", "shape", "spacing", "image_path", "label_path"]
    readonly_fields = fields
    can_delete = False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "status", "num_cases", "num_test_cases", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["name", "project__name"]
    readonly_fields = ["status", "storage_key", "fingerprint", "problems", "notes", "status_changed_at", "import_attempts"]
    inlines = [CaseInline]

    def has_add_permission(self, request):  # datasets come in through the upload and import
        return False

    # Deleting here removes the files too (the stored volumes are patient data).
    def delete_model(self, request, obj):
        dataset_purge(dataset=obj)

    def delete_queryset(self, request, queryset):
        for dataset in queryset:
            dataset_purge(dataset=dataset)
