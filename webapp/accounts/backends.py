"""Sign-in lockout (issue 14, F8): django-axes watches every password check made for a request."""
from axes.backends import AxesStandaloneBackend


class RequestAxesBackend(AxesStandaloneBackend):
    """django-axes' lockout check, skipped when there is no HTTP request.

    Every sign-in that reaches the server over HTTP passes its request (the sign-in form, the
    admin's form and the token API all do), so it is counted and locked out. Calls without a
    request come from this machine's own code (management commands, ``seed_demo``, the shell):
    nothing remote can repeat them, and axes' stock backend would raise for them instead.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None  # let the next backend check the password, uncounted
        return super().authenticate(request, username=username, password=password, **kwargs)
