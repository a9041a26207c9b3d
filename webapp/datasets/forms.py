from django import forms

from .services import MODALITIES


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".nii,.gz,.zip,.tgz,.tar"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Optional; taken from the files if empty.")
    files = MultipleFileField(label="Files", required=False)
    labels = forms.CharField(
        label="Label classes",
        required=False,
        initial="1: foreground",
        help_text="For NIfTI files: value: name pairs, e.g. '1: liver, 2: tumour' (0 is background). "
        "An archive's dataset.json declares its own.",
    )
    modality = forms.ChoiceField(
        choices=[("", "—")] + [(m, m) for m in MODALITIES], required=False, initial="CT"
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
