"""Project pages: list and create, detail with datasets and members, member management."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.common.views import add_validation_errors

from . import selectors, services
from .access import require_owner, require_write
from .forms import InviteForm, ProjectForm, RoleForm
from .invitation_selectors import invitation_list_pending
from .models import WRITE_ROLES, Membership


@login_required
@require_http_methods(["GET", "POST"])
def project_list(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_validation_errors(request, form, error)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect("projects:detail", pk=project.pk)
    projects = selectors.project_list(user=request.user)
    return render(request, "projects/list.html", {"projects": projects, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def project_detail(request, pk):
    """The project page. POST ``rename`` = ``dataset`` | ``model`` | ``prediction`` with ``id``
    and ``name`` renames that thing of the project (through its app's service)."""
    project = selectors.project_get(user=request.user, pk=pk)
    if request.method == "POST":
        require_write(request.user, project)  # viewers: 403, whatever they sent
        _rename(request, project)
        return redirect("projects:detail", pk=project.pk)
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "role": project.user_role,
            "can_write": project.user_role in WRITE_ROLES,
            "is_owner": project.user_role == Membership.Role.OWNER,
            **selectors.project_contents(user=request.user, project=project),
            "members": selectors.member_list(project=project),
            # Owners see pending invitations, masked: never the invitee's account (issue 14, F9).
            "invitations": invitation_list_pending(project=project)
            if project.user_role == Membership.Role.OWNER else [],
            "invite_form": InviteForm(),
            "roles": Membership.Role.choices,
        },
    )


def _rename(request, project) -> None:
    """Rename a dataset, model or prediction of ``project`` (messages say what happened)."""
    from django.http import Http404

    from webapp.datasets.models import Dataset
    from webapp.datasets.services import dataset_update
    from webapp.mlmodels.models import TrainedModel
    from webapp.mlmodels.services import model_rename
    from webapp.predictions.models import Prediction

    kinds = {"dataset": Dataset, "model": TrainedModel, "prediction": Prediction}
    kind = request.POST.get("rename", "")
    if kind not in kinds:
        messages.error(request, "Nothing was renamed: say what to rename (a dataset, model or prediction).")
        return
    try:
        thing = kinds[kind].objects.get(project=project, pk=int(request.POST.get("id", "")))
    except (kinds[kind].DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404(f"No such {kind} in this project.")
    name = request.POST.get("name", "")
    try:
        if kind == "dataset":
            dataset_update(dataset=thing, actor=request.user, name=name)
        elif kind == "model":
            model_rename(model=thing, actor=request.user, name=name)
        else:
            thing.rename(name)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return
    shown = thing.display_name if kind == "prediction" else thing.name
    messages.success(request, f"The {kind} is now called “{shown}”.")


@login_required
@require_POST
def member_role(request, pk, membership_pk):
    membership = selectors.membership_get(user=request.user, project_pk=pk, membership_pk=membership_pk)
    require_owner(request.user, membership.project)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.member_change_role(membership=membership, actor=request.user, role=form.cleaned_data["role"])
        except ValidationError as error:
            add_validation_errors(request, None, error)
        else:
            messages.success(request, f"Role of {membership.user.username} changed to {membership.role}.")
    return redirect("projects:detail", pk=pk)


@login_required
@require_POST
def member_remove(request, pk, membership_pk):
    membership = selectors.membership_get(user=request.user, project_pk=pk, membership_pk=membership_pk)
    leaving = membership.user_id == request.user.pk
    try:
        services.member_remove(membership=membership, actor=request.user)
    except ValidationError as error:
        add_validation_errors(request, None, error)
        return redirect("projects:detail", pk=pk)
    if leaving:
        messages.success(request, "You left the project.")
        return redirect("projects:list")
    messages.success(request, f"{membership.user.username} was removed from the project.")
    return redirect("projects:detail", pk=pk)


@login_required
@require_POST
def project_delete(request, pk):
    project = selectors.project_get(user=request.user, pk=pk)
    try:
        services.project_delete(project=project, actor=request.user)
    except ValidationError as error:
        add_validation_errors(request, None, error)
        return redirect("projects:detail", pk=pk)
    messages.success(request, f"Project “{project.name}” deleted.")
    return redirect("projects:list")
