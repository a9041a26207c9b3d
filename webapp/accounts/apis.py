"""API sign-in: trade a username and password for a token."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser

from webapp.common.parsers import DepthLimitedJSONParser

from .lockout import lockout_response


class TokenApi(ObtainAuthToken):
    """POST username and password; get ``{"token": "..."}`` for ``Authorization: Token <key>``.

    Failed attempts count towards django-axes' lockout like the sign-in form's; a locked-out
    username and address get 429 with a message saying for how long, even with the right password.
    """

    # ObtainAuthToken names DRF's plain JSONParser; JSON nested too deep must be a 400 here too.
    parser_classes = (DepthLimitedJSONParser, FormParser, MultiPartParser)

    @extend_schema(
        request=inline_serializer("TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}),
        responses={
            200: inline_serializer("TokenResponse", {"token": serializers.CharField()}),
            429: inline_serializer("LockedOut", {"detail": serializers.CharField(), "code": serializers.CharField()}),
        },
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):
        try:
            response = super().post(request, *args, **kwargs)
        except serializers.ValidationError:
            # axes flags the request (DRF's wrapper) when this attempt was refused or reached the
            # limit; the middleware cannot see that flag on the wrapper, so it is answered here.
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request._request)
            raise
        return response
