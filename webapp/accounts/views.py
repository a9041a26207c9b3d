"""Sign-in/out pages (Django's auth views) and the API token page."""
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): the sign-out button is a small form."""


@login_required
@require_http_methods(["GET", "POST"])
def token_view(request):
    """Show the user's API token; POST creates a new one (the old one stops working)."""
    token = Token.objects.filter(user=request.user).first()
    if request.method == "POST":
        if token is not None:
            token.delete()
        token = Token.objects.create(user=request.user)
        messages.success(request, "A new API token was created. The old one no longer works.")
        return redirect("accounts:token")
    return render(request, "accounts/token.html", {"token": token})
