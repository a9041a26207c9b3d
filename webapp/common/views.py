"""Helpers for the server-rendered pages."""
from django.contrib import messages
from django.core.exceptions import ValidationError


def add_validation_errors(request, form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form (field errors) or in the messages."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            target = field if form is not None and field in form.fields else None
            for message in errors:
                if form is not None:
                    form.add_error(target, message)
                else:
                    messages.error(request, message)
    else:
        for message in error.messages:
            if form is not None:
                form.add_error(None, message)
            else:
                messages.error(request, message)
