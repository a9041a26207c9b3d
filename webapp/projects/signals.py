"""Signal handlers: an account that is created (or given the e-mail someone was invited under)
picks up the pending invitations typed for it before it existed."""
from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="projects-bind-invitations")
def bind_pending_invitations(sender, instance, update_fields=None, **kwargs):
    # Sign-ins save ``last_login`` alone: nothing an invitation is matched by has changed.
    if update_fields is not None and not {"username", "email", "is_active"} & set(update_fields):
        return
    from .services import invitations_bind_account

    invitations_bind_account(user=instance)
