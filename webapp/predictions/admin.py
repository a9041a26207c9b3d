from django.contrib import admin

from .models import Prediction


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "input_name", "model", "project", "status", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in Prediction._meta.fields]
