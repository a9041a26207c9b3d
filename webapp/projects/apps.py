from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "webapp.projects"
    label = "projects"
    verbose_name = "Projects"

    def ready(self):
        from . import signals  # noqa: F401  (a new account picks up the invitations typed for it)
