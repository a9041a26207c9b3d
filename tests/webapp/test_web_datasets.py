"""Datasets without a worker: state machine, archive safety, pairing, upload validation."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import webcorpus as corpus
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from webtesting import asgi_call

from webapp.datasets import archives, importing, services
from webapp.datasets.models import Dataset, IllegalTransition

S = Dataset.Status


# --- state machine -----------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "path,ok",
    [
        ([S.IMPORTING, S.READY], True),
        ([S.IMPORTING, S.INVALID], True),
        ([S.INVALID], True),
        ([S.READY], False),
        ([S.IMPORTING, S.UPLOADED], False),
        ([S.IMPORTING, S.READY, S.IMPORTING], False),
        ([S.IMPORTING, S.INVALID, S.READY], False),
        ([S.IMPORTING, S.READY, S.INVALID], False),
        (["bogus"], False),
    ],
)
def test_state_machine(make_user, make_project, path, ok):
    project = make_project(make_user())
    dataset = Dataset.objects.create(project=project, name="d", source="files")
    assert dataset.status == S.UPLOADED
    try:
        for status in path:
            dataset.transition(status)
    except IllegalTransition:
        assert not ok
        dataset.refresh_from_db()
        assert dataset.status != path[-1] or path[-1] == "bogus"
    else:
        assert ok
        dataset.refresh_from_db()
        assert dataset.status == path[-1]


@pytest.mark.django_db
def test_transition_stores_problems(make_user, make_project):
    dataset = Dataset.objects.create(project=make_project(make_user()), name="d", source="files")
    dataset.transition(S.INVALID, problems=[{"file": "a.nii", "problem": "bad"}])
    dataset.refresh_from_db()
    assert dataset.problems == [{"file": "a.nii", "problem": "bad"}]


# --- archives ----------------------------------------------------------------------------------
LIMITS = archives.ArchiveLimits(max_total_bytes=10 * 2**20, max_members=20, max_ratio=50)


def test_archive_streaming_cap_stops_members_bigger_than_declared(tmp_path):
    budget = archives._Budget("a.zip", LIMITS, compressed_size=10 * 2**20)
    with pytest.raises(archives.ArchiveError, match="larger than the archive's directory says"):
        archives._copy_capped(io.BytesIO(b"x" * 5000), tmp_path / "out", "m", declared=1000, budget=budget)
    budget = archives._Budget("a.zip", archives.ArchiveLimits(4 * 2**20, 20, 1e9), compressed_size=1)
    with pytest.raises(archives.ArchiveError, match="more than the limit"):
        archives._copy_capped(io.BytesIO(b"\0" * (5 * 2**20)), tmp_path / "out2", "m", declared=10**9, budget=budget)


def test_archive_checks(tmp_path):
    with pytest.raises(archives.ArchiveError, match="'..'"):
        archives.check_archive(corpus.zip_with_member(tmp_path / "a.zip", "x/../../y"), LIMITS)
    with pytest.raises(archives.ArchiveError, match="absolute path"):
        archives.check_archive(corpus.zip_with_member(tmp_path / "b.zip", "/etc/y"), LIMITS)
    with pytest.raises(archives.ArchiveError, match="absolute path"):
        archives.check_archive(corpus.tar_with_member(tmp_path / "c.tar.gz", "/etc/y"), LIMITS)
    with pytest.raises(archives.ArchiveError, match="link"):
        archives.check_archive(corpus.tar_with_member(tmp_path / "d.tar.gz", "x", symlink_to="/etc/passwd"), LIMITS)
    # a zip member flagged as a symlink in its unix mode
    link = tmp_path / "e.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("Task/evil")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(archives.ArchiveError, match="link"):
        archives.check_archive(link, LIMITS)
    many = tmp_path / "f.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(25):
            zf.writestr(f"f{i}", "x")
    with pytest.raises(archives.ArchiveError, match="more than the limit of 20"):
        archives.check_archive(many, LIMITS)
    with pytest.raises(archives.ArchiveError, match="not a readable"):
        archives.check_archive(corpus.text_as_nifti(tmp_path / "g.zip"), LIMITS)
    with pytest.raises(archives.ArchiveError, match="decompression bomb"):
        archives.check_archive(corpus.zip_bomb(tmp_path / "h.zip", size_mb=2), LIMITS)


def test_tar_bomb_is_refused_at_its_first_header_before_its_data_is_decompressed(tmp_path):
    """A tar.gz is read header by header; skipping to the next header decompresses the member
    before it. The caps must stop the bomb at the header that declares it: here the stream ends
    2 MB into a member declaring 1 GB, so reading on would only find a 'truncated' archive."""
    import gzip
    import tarfile

    info = tarfile.TarInfo("Task/imagesTr/big.nii")
    info.size = 1 << 30
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * (2 << 20)))
    with pytest.raises(archives.ArchiveError, match="more than the limit of 10.0 MB") as refused:
        archives.check_archive(bomb, LIMITS)
    assert refused.value.member == "bomb.tar.gz"


def test_archive_refusals_name_no_server_paths(tmp_path):
    """Member names too long for the file system get their own message, and no refusal shows
    where on the server the archive was being unpacked."""
    long_name = tarfile_with(tmp_path / "long.tar.gz", "Task/" + "a" * 300 + ".nii.gz")
    with pytest.raises(archives.ArchiveError, match="name longer than 255 bytes") as refused:
        archives.extract_archive(long_name, tmp_path / "unpacked", LIMITS)
    assert str(tmp_path) not in str(refused.value)
    deep = tarfile_with(tmp_path / "deep.tar.gz", "Task/" + ("d" * 200 + "/") * 25 + "x.nii.gz")
    with pytest.raises(archives.ArchiveError, match="damaged or truncated") as refused:
        archives.extract_archive(deep, tmp_path / "unpacked2", LIMITS)
    assert str(tmp_path) not in str(refused.value), refused.value


def tarfile_with(out: Path, member_name: str) -> Path:
    return corpus.tar_with_member(out, member_name, payload=b"abc")


def test_archive_extracts_a_good_msd_archive(tmp_path):
    folder = corpus.msd_folder(tmp_path / "msd", n_cases=1)
    archive = corpus.tar_folder(folder, tmp_path / "t.tar.gz")
    files = archives.extract_archive(archive, tmp_path / "out", LIMITS)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == [
        "Task01_Test/dataset.json", "Task01_Test/imagesTr/case_000.nii.gz", "Task01_Test/labelsTr/case_000.nii.gz",
    ]


# --- pairing and labels ------------------------------------------------------------------------
def test_pairing_rule():
    paths = [Path(n) for n in ("a.nii.gz", "a_seg.nii.gz", "b.nii", "b_mask.nii", "c.nii.gz", "d_label.nii.gz", "e.txt")]
    pairs, problems = importing.pair_files(paths)
    assert [(image.name, label.name) for image, label in pairs] == [("a.nii.gz", "a_seg.nii.gz"), ("b.nii", "b_mask.nii")]
    expected = {
        "e.txt": "not a NIfTI file name",
        "c.nii.gz": "no label map found for this image",
        "d_label.nii.gz": "no image found for this label map",
    }
    assert sorted(p["file"] for p in problems) == sorted(expected)
    for p in problems:
        assert p["problem"].startswith(expected[p["file"]]), p


def test_parse_labels():
    assert importing.parse_labels("1: liver, 2: tumour") == {0: "background", 1: "liver", 2: "tumour"}
    assert importing.parse_labels('{"0": "bg", "1": "x"}') == {0: "bg", 1: "x"}
    with pytest.raises(ValueError, match="Cannot read the class"):
        importing.parse_labels("liver")
    with pytest.raises(ValueError, match="Declare the label classes"):
        importing.parse_labels("")


# --- upload validation (request-level problems answer 400 and store nothing) --------------------
@pytest.fixture
def editor_client(client, make_user, make_project):
    user = make_user("ed")
    project = make_project(user)
    client.force_login(user)
    return client, project


@pytest.mark.django_db
@pytest.mark.parametrize(
    "files,labels,message",
    [
        ([], "1: a", "Choose NIfTI files or one archive"),
        ([("a.zip", b"PK"), ("b.nii.gz", b"x")], "1: a", "either NIfTI files or one archive"),
        ([("notes.txt", b"x")], "1: a", "Only .nii, .nii.gz, .zip and .tar.gz"),
        ([("a.nii.gz", b"x"), ("a_seg.nii.gz", b"x")], "liver", "Cannot read the class"),
        ([("a" * 210 + ".nii.gz", b"x"), ("a" * 210 + "_seg.nii.gz", b"x")], "1: a", "is longer than 200 characters"),
    ],
)
def test_upload_request_errors_answer_400(editor_client, media_root, files, labels, message):
    client, project = editor_client
    uploads = [SimpleUploadedFile(name, data) for name, data in files]
    before = _stored_folders(media_root)
    response = client.post(f"/api/projects/{project.pk}/datasets/", {"files": uploads, "labels": labels})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Dataset.objects.count() == 0
    assert _stored_folders(media_root) == before


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/projects/{}/datasets/", "/projects/{}/datasets/upload/"])
def test_upload_over_the_size_cap_answers_413(editor_client, settings, media_root, url):
    client, project = editor_client
    settings.VOXELSEARCH = {**settings.VOXELSEARCH, "MAX_UPLOAD_BYTES": 1000}
    before = _stored_folders(media_root)
    response = client.post(
        url.format(project.pk), {"files": [SimpleUploadedFile("a.nii.gz", b"x" * 5000)], "labels": "1: a"}
    )
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()
    assert Dataset.objects.count() == 0
    assert _stored_folders(media_root) == before


def _stored_folders(media_root: Path) -> set[str]:
    return {p.name for p in (media_root / "datasets").glob("*")}


@pytest.mark.django_db(transaction=True)
def test_asgi_refuses_an_oversized_body_before_reading_it(editor_client, settings):
    """Django's ASGI handler copies a whole body to disk before any view runs: a body over the
    cap must be answered 413 before that, from its Content-Length, or (chunked) at the cap."""
    client, project = editor_client
    settings.VOXELSEARCH = {**settings.VOXELSEARCH, "MAX_UPLOAD_BYTES": 10_000}
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    url = f"/api/projects/{project.pk}/datasets/"
    kind = (b"content-type", b"multipart/form-data; boundary=xyz")
    sent = asgi_call("POST", url, [cookie, kind, (b"content-length", b"100000")], chunks=[b"x" * 1000] * 100)
    assert (sent.status, sent.body_bytes_read) == (413, 0)
    sent = asgi_call("POST", url, [cookie, kind], chunks=[b"x" * 1000] * 100)  # chunked: no Content-Length
    assert sent.status == 413 and sent.body_bytes_read <= 11_000
    assert Dataset.objects.count() == 0


@pytest.mark.django_db
def test_an_upload_that_fails_while_storing_leaves_no_files(editor_client, settings, media_root, tmp_path, monkeypatch):
    """Disk full while the second file is moved into place: no dataset, no stored file, no
    temporary upload file is left."""
    client, project = editor_client
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "incoming")
    (tmp_path / "incoming").mkdir()
    real_move = services.file_move_safe
    moves = []

    def disk_full_on_second_move(source, target, **kwargs):
        moves.append(target)
        if len(moves) == 2:
            raise OSError(28, "No space left on device")
        return real_move(source, target, **kwargs)

    monkeypatch.setattr(services, "file_move_safe", disk_full_on_second_move)
    before = _stored_folders(media_root)
    client.raise_request_exception = False
    image, label = corpus.good_pair(tmp_path, "a")
    with open(image, "rb") as a, open(label, "rb") as b:
        response = client.post(f"/api/projects/{project.pk}/datasets/", {"files": [a, b], "labels": "1: a, 2: b"})
    assert response.status_code == 500 and len(moves) == 2
    assert Dataset.objects.count() == 0
    assert _stored_folders(media_root) == before
    assert list((tmp_path / "incoming").iterdir()) == []


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/projects/", "/api/projects/"])
def test_a_body_over_the_cap_sent_to_another_form_is_no_server_error(editor_client, settings, url):
    """The upload cap stops files streaming in on every route, without a server error."""
    client, _ = editor_client
    settings.VOXELSEARCH = {**settings.VOXELSEARCH, "MAX_UPLOAD_BYTES": 1000}
    client.raise_request_exception = False
    response = client.post(url, {"name": "P2", "attachment": SimpleUploadedFile("a.bin", b"x" * 5000)})
    assert response.status_code < 500


@pytest.mark.django_db
def test_uploads_stream_to_temporary_files(settings):
    assert settings.FILE_UPLOAD_HANDLERS == ["webapp.common.uploads.CappedTemporaryFileUploadHandler"]
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    from webapp.common.uploads import CappedTemporaryFileUploadHandler

    assert issubclass(CappedTemporaryFileUploadHandler, TemporaryFileUploadHandler)
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 256 * 1024


@pytest.mark.django_db
def test_upload_page_without_javascript_creates_the_dataset(editor_client, tmp_path, media_root):
    """The plain form post (no JS) stores the files and queues the import (no worker here)."""
    client, project = editor_client
    image, label = corpus.good_pair(tmp_path, "p1")
    with open(image, "rb") as a, open(label, "rb") as b:
        response = client.post(
            f"/projects/{project.pk}/datasets/upload/", {"files": [a, b], "labels": "1: organ, 2: lesion", "name": "Form"}
        )
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="Form")
    assert response["Location"] == f"/datasets/{dataset.pk}/"
    assert dataset.status == S.UPLOADED and dataset.source == "files"
    assert sorted(p.name for p in dataset.upload_dir.iterdir()) == ["p1.nii.gz", "p1_seg.nii.gz"]
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="uploaded"' in page and "dataset-status.js" in page


@pytest.mark.django_db
def test_the_import_is_queued_only_once_the_upload_commits(make_user, make_project, tmp_path, django_capture_on_commit_callbacks):
    """The job is sent on commit (a worker must find the row); the real send is covered by
    test_web_import, which runs the job in a worker."""
    user = make_user()
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in corpus.good_pair(tmp_path, "a")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.dataset_upload(project=make_project(user), actor=user, files=uploads, labels="1: a, 2: b")
    assert [c.__qualname__ for c in callbacks] == ["enqueue_on_commit.<locals>.send"]


@pytest.fixture
def broker_down():
    """Point Celery at a port where no Redis listens (a real connection failure)."""
    from webtesting import reset_broker_pools

    from webapp.celery import app

    url, timeout = app.conf.broker_url, app.conf.broker_connection_timeout
    reset_broker_pools()
    app.conf.broker_url, app.conf.broker_connection_timeout = "redis://127.0.0.1:9/0", 0.5
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_connection_timeout = url, timeout
        reset_broker_pools()


@pytest.mark.django_db
def test_an_upload_during_a_broker_outage_stays_uploaded_for_the_sweep(
    make_user, make_project, tmp_path, broker_down, django_capture_on_commit_callbacks
):
    """Issue 14 item 4: the database is the truth for the queue; an outage fails nothing."""
    user = make_user()
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in corpus.good_pair(tmp_path, "a")]
    with django_capture_on_commit_callbacks(execute=True):
        dataset = services.dataset_upload(project=make_project(user), actor=user, files=uploads, labels="1: a, 2: b")
    dataset.refresh_from_db()
    assert dataset.status == S.UPLOADED and dataset.problems == []
    assert sorted(p.name for p in dataset.upload_dir.iterdir()) == sorted(u.name for u in uploads)


@pytest.mark.django_db
def test_import_service_runs_synchronously_and_is_idempotent(make_user, make_project, tmp_path):
    user = make_user()
    project = make_project(user)
    folder = corpus.msd_folder(tmp_path / "msd", n_cases=1)
    dataset = services.dataset_import_folder(project=project, actor=user, folder=folder, name="F", queue=False)
    assert dataset.status == S.READY and dataset.num_cases == 1
    again = services.dataset_import(dataset_id=dataset.pk)  # a redelivered job changes nothing
    assert again.status == S.READY and again.cases.count() == 1


@pytest.mark.django_db
def test_redelivery_after_a_crash_before_cleanup_removes_the_raw_uploads(make_user, make_project, tmp_path):
    """A worker that dies between committing 'ready' and removing the raw (unscrubbed) uploads
    gets the job again: the redelivery removes them."""
    user = make_user()
    dataset = _upload_and_import(user, make_project(user), list(corpus.good_pair(tmp_path, "a")))
    assert dataset.status == S.READY and not dataset.upload_dir.exists()
    dataset.upload_dir.mkdir()
    raw = corpus.good_pair(dataset.upload_dir, "a")[0]  # as if left behind
    again = services.dataset_import(dataset_id=dataset.pk)
    assert again.status == S.READY and again.cases.count() == 1
    assert not raw.exists() and not dataset.upload_dir.exists()
    assert again.cases.get().image_file.is_file()


@pytest.mark.django_db
def test_a_failing_duplicate_delivery_leaves_a_finished_import_alone(make_user, make_project, tmp_path, monkeypatch):
    """With acks late, a job can run twice at once (redelivered to a second worker). When one
    delivery finishes the import and the other then fails, the dataset stays ready with its files."""
    user = make_user()
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in (*corpus.good_pair(tmp_path, "a"), *corpus.good_pair(tmp_path, "b", 1))]
    dataset = services.dataset_upload(project=make_project(user), actor=user, files=uploads, labels="1: organ, 2: lesion")
    real_run_import = services.run_import

    def other_delivery_finishes_then_this_one_fails(**kwargs):
        monkeypatch.setattr(services, "run_import", real_run_import)
        assert services.dataset_import(dataset_id=dataset.pk).status == S.READY
        raise RuntimeError("this delivery fails")

    monkeypatch.setattr(services, "run_import", other_delivery_finishes_then_this_one_fails)
    result = services.dataset_import(dataset_id=dataset.pk)
    assert result.status == S.READY and result.problems == []
    cases = list(result.cases.all())
    assert len(cases) == 2
    assert all(c.image_file.is_file() and c.label_file.is_file() and c.preview_file.is_file() for c in cases)


@pytest.mark.django_db
def test_two_deliveries_that_both_finish_store_the_cases_once(make_user, make_project, tmp_path, monkeypatch, caplog):
    user = make_user()
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in corpus.good_pair(tmp_path, "a")]
    dataset = services.dataset_upload(project=make_project(user), actor=user, files=uploads, labels="1: organ, 2: lesion")
    real_run_import = services.run_import

    def other_delivery_finishes_first(**kwargs):
        result = real_run_import(**kwargs)
        monkeypatch.setattr(services, "run_import", real_run_import)
        assert services.dataset_import(dataset_id=dataset.pk).status == S.READY
        return result

    monkeypatch.setattr(services, "run_import", other_delivery_finishes_first)
    with caplog.at_level("ERROR"):
        result = services.dataset_import(dataset_id=dataset.pk)
    assert result.status == S.READY and result.cases.count() == 1
    assert result.cases.get().image_file.is_file()
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize("lost_workers,status", [(1, S.READY), (3, S.INVALID)])
def test_a_job_that_keeps_killing_its_worker_is_given_up(make_user, make_project, tmp_path, lost_workers, status):
    """With acks late and reject-on-worker-lost, a job whose worker dies (e.g. out of memory) is
    delivered again. After a lost worker it is retried from a clean start; after three, it is
    given up with a reason instead of coming back for ever."""
    user = make_user()
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in corpus.good_pair(tmp_path, "a")]
    dataset = services.dataset_upload(project=make_project(user), actor=user, files=uploads, labels="1: organ, 2: lesion")
    dataset.transition(S.IMPORTING)  # what the lost deliveries did, before their workers died
    Dataset.objects.filter(pk=dataset.pk).update(import_attempts=lost_workers)
    (dataset.msd_dir / "imagesTr").mkdir(parents=True)
    (dataset.msd_dir / "imagesTr" / "case_0007.nii.gz").write_bytes(b"half written")
    result = services.dataset_import(dataset_id=dataset.pk)
    assert result.status == status
    if status == S.READY:
        assert result.cases.count() == 1
        assert sorted(p.name for p in (dataset.msd_dir / "imagesTr").iterdir()) == ["case_0001.nii.gz"]
    else:
        assert "stopped without finishing 3 times" in result.problems[0]["problem"]
        assert result.cases.count() == 0 and not dataset.root.exists()


@pytest.mark.django_db
def test_delete_refused_while_importing(make_user, make_project):
    user = make_user()
    dataset = Dataset.objects.create(project=make_project(user), name="d", source="files")
    dataset.transition(S.IMPORTING)
    with pytest.raises(ValidationError, match="being imported"):
        services.dataset_delete(dataset=dataset, actor=user)
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def _upload_and_import(user, project, paths, labels="1: organ, 2: lesion", modality="MR"):
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
    dataset = services.dataset_upload(project=project, actor=user, files=uploads, labels=labels, modality=modality)
    return services.dataset_import(dataset_id=dataset.pk)  # what the worker does


@pytest.mark.django_db
def test_multichannel_nifti_files_import(make_user, make_project, tmp_path):
    import numpy as np

    user = make_user()
    project = make_project(user)
    image, label = corpus.case_arrays(3)
    four_d = np.stack([image, image * 0.5, image + 1], axis=-1)
    paths = [corpus.write_nifti(tmp_path / "m.nii.gz", four_d), corpus.write_nifti(tmp_path / "m_seg.nii.gz", label)]
    dataset = _upload_and_import(user, project, paths)
    assert dataset.status == S.READY, dataset.problems
    assert dataset.channel_names == ["MR 0", "MR 1", "MR 2"]
    case = dataset.cases.get()
    assert case.n_channels == 3 and case.shape == [*corpus.SHAPE, 3]
    assert len(dataset.fingerprint["intensity"]) == 3


@pytest.mark.django_db
def test_affine_tolerance_and_non_finite_images(make_user, make_project, tmp_path):
    """Float32 header rounding (1e-5 mm) between image and label is accepted; an image with an
    infinite voxel is refused."""
    import numpy as np

    user = make_user()
    project = make_project(user)
    image, label = corpus.case_arrays(0)
    near = [
        corpus.write_nifti(tmp_path / "near.nii.gz", image),
        corpus.write_nifti(tmp_path / "near_seg.nii.gz", label, corpus.affine(origin=(-10.0, 20.00001, 5.0))),
    ]
    assert _upload_and_import(user, project, near).status == S.READY
    image[1, 2, 3] = np.inf
    spoilt = [corpus.write_nifti(tmp_path / "inf.nii.gz", image), corpus.write_nifti(tmp_path / "inf_seg.nii.gz", label)]
    dataset = _upload_and_import(user, project, spoilt)
    assert dataset.status == S.INVALID and not dataset.root.exists()
    assert dataset.problems[0]["file"] == "inf.nii.gz" and "infinite" in dataset.problems[0]["problem"]


@pytest.mark.django_db
def test_an_oversized_dataset_json_is_refused_before_it_is_parsed(make_user, make_project, tmp_path):
    """dataset.json is parsed in memory: a huge one (here valid, with a 17 MB description) is refused."""
    import json
    import os

    folder = corpus.msd_folder(tmp_path / "msd", n_cases=1)
    description = json.loads((folder / "dataset.json").read_text())
    description["description"] = os.urandom(17 << 19).hex()
    (folder / "dataset.json").write_text(json.dumps(description))
    user = make_user()
    dataset = _upload_and_import(user, make_project(user), [corpus.zip_folder(folder, tmp_path / "Task.zip")], labels="")
    assert dataset.status == S.INVALID
    assert dataset.problems == [{"file": "dataset.json", "problem": dataset.problems[0]["problem"]}]
    assert "more than the limit of 16,777,216" in dataset.problems[0]["problem"]
    assert not dataset.root.exists()


def _with_trailing_bytes(path: Path, extra: bytes) -> Path:
    """Rewrite ``path`` (.nii or .nii.gz) with ``extra`` after its voxel data."""
    import gzip

    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + extra))
    else:
        path.write_bytes(path.read_bytes() + extra)
    return path


def _with_header_gap(path: Path, gap: int) -> Path:
    """Rewrite a .nii.gz so that ``gap`` zero bytes (and no extensions) lie between its header
    and its voxel data."""
    import gzip

    import nibabel as nib

    raw = gzip.decompress(path.read_bytes())
    offset = int(nib.load(str(path)).dataobj.offset)
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw))
    header["vox_offset"] = len(header.binaryblock) + 4 + gap
    head = header.binaryblock + bytes(4 + gap)  # extender bytes 0: no extensions
    path.write_bytes(gzip.compress(head + raw[offset:], compresslevel=1))
    return path


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spoil,message",
    [
        # 64 MB of zeros behind the data: a 64 KB upload that storing would copy in full
        (lambda image, label: _with_trailing_bytes(image, b"\0" * (64 << 20)), "more data after the voxel data"),
        # text nobody checked, appended to a label map, would be kept in the stored file
        (lambda image, label: _with_trailing_bytes(label, b"PatientName=Doe^Jane"), "more data after the voxel data"),
        # a 40 MB gap between header and data: storing copies the gap through memory
        (lambda image, label: _with_header_gap(image, 40 << 20), "header and its extensions take"),
    ],
    ids=["gz-bomb-after-data", "text-after-label-data", "huge-header-gap"],
)
def test_bytes_outside_the_described_voxel_data_are_refused(make_user, make_project, tmp_path, spoil, message):
    user = make_user()
    project = make_project(user)
    image, label = corpus.good_pair(tmp_path, "c1")
    label = label.rename(label.with_name("c1_seg.nii"))  # an uncompressed label map
    label.write_bytes(__import__("gzip").decompress(label.read_bytes()))
    spoilt = spoil(image, label)
    dataset = _upload_and_import(user, project, [image, label])
    assert dataset.status == S.INVALID
    assert any(p["file"] == spoilt.name and message in p["problem"] for p in dataset.problems), dataset.problems
    assert dataset.cases.count() == 0 and not dataset.root.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["fingerprint", "preview", "database"])
def test_failure_after_files_were_written_leaves_nothing(make_user, make_project, tmp_path, monkeypatch, where):
    """All or nothing: a failure late in the import (after cases were stored) removes everything."""
    from nasengine.data.errors import DataError
    from webapp.datasets.models import Case

    def boom(*args, **kwargs):
        if where == "fingerprint":
            raise DataError("case_0001.nii.gz", "simulated failure")
        raise RuntimeError("simulated internal error")

    target = {
        "fingerprint": (importing, "compute_fingerprint"),
        "preview": (importing, "render_preview"),
        "database": (Case.objects, "bulk_create"),
    }[where]
    monkeypatch.setattr(*target, boom)
    user = make_user()
    project = make_project(user)
    dataset = _upload_and_import(user, project, [*corpus.good_pair(tmp_path, "a"), *corpus.good_pair(tmp_path, "b", 1)])
    assert dataset.status == S.INVALID
    assert dataset.problems and dataset.problems[0]["problem"]
    if where == "fingerprint":
        assert dataset.problems == [{"file": "case_0001.nii.gz", "problem": "simulated failure"}]
    else:
        assert "internal error" in dataset.problems[0]["problem"] or "nothing was kept" in dataset.problems[0]["problem"]
    assert Case.objects.count() == 0
    assert not dataset.root.exists()
