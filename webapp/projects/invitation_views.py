"""Invitation pages (issue 14, F9): owners invite without learning who has an account; the
invitee lists their invitations and accepts (joining the project) or declines."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.common.views import add_validation_errors

from . import selectors, services
from .access import require_owner
from .apis import invite_sent_message
from .forms import InviteForm
from .invitation_selectors import invitation_get_for_owner, invitation_get_mine, invitation_list_mine


@login_required
@require_POST
def member_invite(request, pk):
    """The project page's invite form: the same message whoever it names."""
    project = selectors.project_get(user=request.user, pk=pk)
    require_owner(request.user, project)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.member_invite(
                project=project, actor=request.user, identifier=form.cleaned_data["user"], role=form.cleaned_data["role"]
            )
        except ValidationError as error:
            add_validation_errors(request, None, error)
        else:
            messages.success(request, invite_sent_message(invitation.role))
    else:
        messages.error(request, "Give a username or e-mail and a role.")
    return redirect("projects:detail", pk=project.pk)


@login_required
@require_GET
def invitation_list(request):
    return render(request, "invitations/list.html", {"invitations": invitation_list_mine(user=request.user)})


@login_required
@require_POST
def invitation_accept(request, invitation_pk):
    invitation = invitation_get_mine(user=request.user, pk=invitation_pk)
    try:
        membership = services.invitation_accept(invitation=invitation, actor=request.user)
    except ValidationError as error:
        add_validation_errors(request, None, error)
        return redirect("projects:invitations")
    messages.success(request, f"You joined “{invitation.project.name}” as {membership.role}.")
    return redirect("projects:detail", pk=invitation.project_id)


@login_required
@require_POST
def invitation_decline(request, invitation_pk):
    invitation = invitation_get_mine(user=request.user, pk=invitation_pk)
    try:
        services.invitation_decline(invitation=invitation, actor=request.user)
    except ValidationError as error:
        add_validation_errors(request, None, error)
    else:
        messages.success(request, f"You declined the invitation to “{invitation.project.name}”.")
    return redirect("projects:invitations")


@login_required
@require_POST
def invitation_withdraw(request, pk, invitation_pk):
    """Owners withdraw a pending invitation from the project page."""
    invitation = invitation_get_for_owner(user=request.user, project_pk=pk, pk=invitation_pk)
    try:
        services.invitation_cancel(invitation=invitation, actor=request.user)
    except ValidationError as error:
        add_validation_errors(request, None, error)
    else:
        messages.success(request, "The invitation was withdrawn.")
    return redirect("projects:detail", pk=pk)
