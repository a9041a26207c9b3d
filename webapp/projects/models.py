from django.conf import settings
from django.db import models


class Project(models.Model):
    """A workspace: every dataset (and later run, model, prediction) belongs to one project."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


WRITE_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.EDITOR})


class Invitation(models.Model):
    """An owner's invitation to join a project, pending until the invitee accepts or declines.

    Issue 14, F9: inviting must not tell the owner whether an account exists, nor show its e-mail.
    So an invitation is recorded for whatever the owner typed (``identifier``), matched to an
    account or not (``invitee`` is then empty), and owners see the same pending row either way.
    Only the invitee (when there is one) sees it in their invitations and can accept it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    # What the owner typed, trimmed and lower-cased: shown back to owners (masked if an e-mail).
    identifier = models.CharField(max_length=254)
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.VIEWER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "identifier"], condition=models.Q(status="pending"),
                name="one_pending_invitation_per_identifier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.identifier} to {self.project} ({self.status})"

    @property
    def shown_identifier(self) -> str:
        """What owners see: the typed name, or an e-mail masked to its first letter and domain."""
        local, at, domain = self.identifier.partition("@")
        if not at:
            return self.identifier
        return f"{local[:1]}…@{domain}"
