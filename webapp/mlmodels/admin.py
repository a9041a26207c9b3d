from django.contrib import admin

from .models import TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "method", "mean_dice", "created"]
    search_fields = ["name", "project__name"]
    readonly_fields = ["run", "dataset", "bundle_dir", "label_names", "val_dice", "mean_dice", "exports"]
