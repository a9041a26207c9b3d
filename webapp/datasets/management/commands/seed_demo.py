"""Create the demo account, project and dataset (idempotent).

    python manage.py seed_demo            # import now, in this process
    python manage.py seed_demo --queue    # queue the import for a Celery worker instead

Demo sign-in: user ``demo``, password ``demo-voxels``.
"""
import tempfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.datasets.models import Dataset
from webapp.datasets.services import dataset_delete, dataset_import_folder
from webapp.projects.models import Membership, Project
from webapp.projects.services import project_create

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-voxels"
DEMO_EMAIL = "demo@voxelsearch.invalid"
DEMO_PROJECT = "Demo project"
DEMO_DATASET = "Demo dataset"


class Command(BaseCommand):
    help = "Create the demo user (demo / demo-voxels), a demo project and a synthetic demo dataset."

    def add_arguments(self, parser):
        parser.add_argument("--queue", action="store_true", help="queue the import for a worker instead of running it here")
        parser.add_argument("--cases", type=int, default=6, help="number of synthetic cases (default 6)")

    def handle(self, *args, queue=False, cases=6, **options):
        User = get_user_model()
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": DEMO_EMAIL})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
                self.stdout.write(f"Created user {DEMO_USERNAME!r} (password {DEMO_PASSWORD!r}).")
            project = Project.objects.filter(
                name=DEMO_PROJECT, memberships__user=user, memberships__role=Membership.Role.OWNER
            ).first()
            if project is None:
                project = project_create(user=user, name=DEMO_PROJECT, description="Synthetic volumes to try VoxelSearch with.")
                self.stdout.write(f"Created project {DEMO_PROJECT!r}.")

        existing = Dataset.objects.filter(project=project, name=DEMO_DATASET).exclude(status=Dataset.Status.INVALID).first()
        if existing is not None:
            self.stdout.write(f"Demo dataset already present (status {existing.status}).")
            return
        for broken in Dataset.objects.filter(project=project, name=DEMO_DATASET, status=Dataset.Status.INVALID):
            dataset_delete(dataset=broken, actor=user)

        from nasengine.data.demo import make_demo_data
        with tempfile.TemporaryDirectory(prefix="voxelsearch-demo-") as tmp:
            folder = make_demo_data(Path(tmp) / "demo", n_cases=cases)
            dataset = dataset_import_folder(
                project=project, actor=user, folder=folder, name=DEMO_DATASET,
                description="Synthetic volumes made by nasengine.data.demo.make_demo_data.", queue=queue,
            )
        if dataset.status == Dataset.Status.INVALID:
            raise CommandError(f"The demo dataset failed to import: {dataset.problems}")
        self.stdout.write(f"Demo dataset {DEMO_DATASET!r}: {dataset.status} ({dataset.num_cases} cases).")
