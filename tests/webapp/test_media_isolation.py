"""Each test gets its own media folder (issue 13.7, second mend).

Run ids are reused across tests (the database is emptied between them), so with one media folder
per session a new run found ``runs/<id>/checkpoints/checkpoint.pt`` that an earlier test had left
and tried to resume from it. Here: what one test writes into media the next cannot see, and the
live server (a subprocess started once per session) reads the running test's folder.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from django.conf import settings

# What the first test wrote, for the second to look for (tests in a module run in order).
_LEFT_BEHIND: dict[str, Path] = {}
CHECKPOINT = Path("runs") / "1" / "checkpoints" / "checkpoint.pt"


def test_a_test_writes_a_checkpoint_into_its_media(media_root, media_link):
    path = Path(settings.MEDIA_ROOT) / CHECKPOINT
    path.parent.mkdir(parents=True)
    path.write_bytes(b"placeholder bytes, not a checkpoint")
    assert Path(settings.MEDIA_ROOT) == media_root
    # The subprocesses' MEDIA_ROOT is the link: it shows this very file now.
    assert (media_link / CHECKPOINT).read_bytes() == path.read_bytes()
    _LEFT_BEHIND["root"] = media_root


def test_the_next_test_cannot_see_it(media_root, media_link):
    if "root" not in _LEFT_BEHIND:
        pytest.skip("runs after test_a_test_writes_a_checkpoint_into_its_media")
    previous = _LEFT_BEHIND["root"]
    assert (previous / CHECKPOINT).is_file()  # it is still on disk, only elsewhere
    assert media_root != previous
    assert not (Path(settings.MEDIA_ROOT) / CHECKPOINT).exists()
    assert not (media_link / CHECKPOINT).exists()
    assert list(media_root.iterdir()) == []
    assert os.path.realpath(media_link) == os.path.realpath(media_root)


@pytest.mark.django_db(transaction=True)
def test_the_live_server_reads_the_running_tests_media(asgi_live_server, make_user, make_project, session_cookie):
    from webapp.datasets.models import Case, Dataset

    user = make_user("media-reader")
    project = make_project(user, name="Media")
    dataset = Dataset.objects.create(project=project, name="D", source="folder", status=Dataset.Status.READY)
    preview = dataset.preview_dir / "case_0001.png"
    preview.parent.mkdir(parents=True)
    preview.write_bytes(b"\x89PNG this test's own bytes")
    case = Case.objects.create(dataset=dataset, case_id="case_0001", index=0, image_path="x", label_path="y",
                               preview_path=str(preview.relative_to(settings.MEDIA_ROOT)))
    url = f"{asgi_live_server.url}/datasets/{dataset.pk}/cases/{case.pk}/preview.png"
    response = requests.get(url, cookies=session_cookie(user), timeout=30)
    assert response.status_code == 200
    assert response.content == preview.read_bytes()
    # The file lives in this test's folder only: gone from it, the server cannot find it either.
    preview.unlink()
    assert requests.get(url, cookies=session_cookie(user), timeout=30).status_code == 404
