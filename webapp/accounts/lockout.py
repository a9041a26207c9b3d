"""What a locked-out sign-in gets: a page for browsers, JSON for the API, never a bare 403."""
import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKOUT_STATUS = 429


def lockout_minutes() -> int:
    """The cool-off, in whole minutes (AXES_COOLOFF_TIME is a timedelta here)."""
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = lockout_minutes()
    return (
        f"Too many failed sign-ins for this account from this address. Sign-in is blocked for "
        f"{minutes} minute{'s' if minutes != 1 else ''}; try again after that (a correct password "
        f"does not lift the block)."
    )


def wants_json(request: HttpRequest) -> bool:
    path = getattr(request, "path", "") or ""
    accept = request.META.get("HTTP_ACCEPT", "")
    return path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE. axes calls it with (request, response, credentials) from sync
    middleware and with (request, credentials) from async middleware; neither argument is used."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if wants_json(request):
        response = JsonResponse({"detail": lockout_message(), "code": "locked_out"}, status=LOCKOUT_STATUS)
    else:
        response = render(
            request, "accounts/locked_out.html", {"message": lockout_message(), "minutes": lockout_minutes()},
            status=LOCKOUT_STATUS,
        )
    response["Retry-After"] = retry_after
    return response
