"""Prediction pages in a researcher's words (issue 13.5): plain progress, volumes to a sensible
precision with the reference label's beside them, warnings when the input does not match the
model's training data, and the label colours a model keeps."""
from __future__ import annotations

import numpy as np
import pytest
from predictiontesting import make_prediction, write_volume
from test_runs_support import make_model

from webapp.datasets.models import Case, Dataset
from webapp.predictions import compatibility
from webapp.predictions.selectors import plain_progress
from webapp.predictions.views import volume_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user, make_project, media_root):
    owner, viewer = make_user("owner"), make_user("viewer")
    project = make_project(owner, name="Brain study", viewers=[viewer])
    mri = Dataset.objects.create(project=project, name="Brain MRI", source="folder", status="ready", modality="MRI",
                                 labels={"0": "background", "1": "a", "2": "b"}, channel_names=["T1"],
                                 fingerprint={"median_spacing": [1.0, 1.0, 1.2]})
    ct = Dataset.objects.create(project=project, name="Phantom CT", source="folder", status="ready", modality="CT",
                                labels={"0": "background", "1": "a", "2": "b"}, channel_names=["CT"])
    model = make_model(project, mri, media_root)
    return {"owner": owner, "viewer": viewer, "project": project, "mri": mri, "ct": ct, "model": model}


@pytest.mark.parametrize("ml,text", [(1515.618, "1,516"), (45.234, "45.2"), (3.0712, "3.07"), (0.0523, "0.052"),
                                     (0, "0"), (None, "—")])
def test_volumes_to_a_sensible_precision(ml, text):
    assert volume_text(ml) == text


def test_progress_in_plain_words():
    assert plain_progress("sliding window over (66, 78, 63) with (32, 32, 32) windows") == \
        "segmenting the volume (66 × 78 × 63 voxels after resampling), patch by patch"
    assert plain_progress("preprocessing input.nii.gz").startswith("preparing the volume")
    assert plain_progress("segmenting 66×78×63 voxels in 12 overlapping windows") == "segmenting 66×78×63 voxels in 12 overlapping windows"


def test_pending_page_says_no_gpu_and_no_window_sizes(client, world):
    prediction = make_prediction(world["model"], status="queued")
    prediction.progress = "sliding window over (66, 78, 63) with (32, 32, 32) windows"
    prediction.save()
    client.force_login(world["owner"])
    page = client.get(f"/predictions/{prediction.pk}/").content.decode()
    assert "GPU" not in page and "(32, 32, 32)" not in page
    assert "Waiting for a worker" in page and "66 × 78 × 63 voxels" in page


def test_compatibility_checks_channels_modality_dataset_and_spacing(world):
    model, ct, mri = world["model"], world["ct"], world["mri"]
    assert compatibility.warnings_for(model, n_channels=1, spacing=[1.0, 1.2, 1.0], dataset=mri) == []
    found = compatibility.warnings_for(model, n_channels=2, spacing=[0.1, 0.1, 0.1], dataset=ct)
    assert len(found) == 3
    assert "1 channel (image); this volume has 2" in found[0]
    assert "CT image from “Phantom CT”" in found[1] and "trained on MRI images" in found[1]
    assert "order of magnitude off" in found[2] and "0.1 × 0.1 × 0.1 mm" in found[2]
    # nine times finer is not "an order of magnitude"; an upload has no dataset to compare
    assert compatibility.warnings_for(model, n_channels=1, spacing=[0.12, 0.12, 0.14]) == []
    other = Dataset.objects.create(project=world["project"], name="More MRI", source="folder", modality="mri")
    assert "not from “Brain MRI”" in compatibility.warnings_for(model, n_channels=1, spacing=None, dataset=other)[0]


def _case(dataset, media_root, label: np.ndarray, spacing=(2.0, 2.0, 2.0)):
    affine = np.diag([*spacing, 1.0])
    root = dataset.root / "msd"
    write_volume(root / "imagesTr" / "c1.nii.gz", np.zeros(label.shape, np.float32), affine, identifying=False)
    write_volume(root / "labelsTr" / "c1.nii.gz", label, affine, identifying=False)
    return Case.objects.create(dataset=dataset, case_id="c1", index=0,
                               image_path=str((root / "imagesTr" / "c1.nii.gz").relative_to(media_root)),
                               label_path=str((root / "labelsTr" / "c1.nii.gz").relative_to(media_root)),
                               shape=list(label.shape), spacing=list(spacing), n_channels=1)


def test_a_case_shows_its_reference_volume_and_a_warning_for_another_dataset(client, world, media_root):
    label = np.zeros((8, 8, 8), np.uint8)
    label[:4, :4, :4] = 1  # 64 voxels of 8 mm^3: 0.512 mL
    case = _case(world["ct"], media_root, label)
    prediction = make_prediction(world["model"])  # predicted: 8 voxels of class 1, 0.064 mL
    prediction.source_case = case
    prediction.save()
    client.force_login(world["owner"])
    page = client.get(f"/predictions/{prediction.pk}/").content.decode()
    assert 'id="compatibility-warnings"' in page and "CT image from “Phantom CT”" in page
    assert "Reference label (mL)" in page and 'class="reference-ml num" data-ml="0.512"' in page and ">0.51<" in page
    prediction.refresh_from_db()
    assert prediction.reference_volumes[0]["voxels"] == 64  # counted once, kept


def test_predict_page_puts_the_training_data_first_and_warns_about_other_datasets(client, world, media_root):
    _case(world["ct"], media_root, np.zeros((8, 8, 8), np.uint8))
    mri_case = _case(world["mri"], media_root, np.zeros((8, 8, 8), np.uint8), spacing=(1.0, 1.0, 1.2))
    client.force_login(world["owner"])
    response = client.get(f"/models/{world['model'].pk}/predict/")
    groups = response.context["case_groups"]
    assert [g["dataset_name"] for g in groups] == ["Brain MRI", "Phantom CT"]
    assert groups[0]["training_data"] and groups[0]["warnings"] == [] and groups[0]["cases"] == [mri_case]
    assert any("trained on MRI images" in w for w in groups[1]["warnings"])
    assert "not the model's training data" in response.content.decode()


def test_label_colours_are_saved_on_the_model_and_used_by_the_viewer(client, world):
    model = world["model"]
    prediction = make_prediction(model)
    client.force_login(world["owner"])
    url = f"/predictions/{prediction.pk}/"
    client.post(url, {"action": "colours", "colour_1": "#112233", "colour_2": "#56b4e9"})
    model.refresh_from_db()
    assert model.label_colours == {"1": "#112233"}  # class 2 kept its default: no override
    config = client.get(url).context["viewer_config"]
    assert [c["hex"] for c in config["colours"]] == ["#112233", "#56b4e9"] and config["crosshair"] is True
    response = client.post(url, {"action": "colours", "colour_1": "red"}, follow=True)
    assert "#rrggbb" in response.content.decode()
    response = client.post(url, {"action": "colours", "colour_7": "#000000"}, follow=True)
    assert "no class" in response.content.decode()
    model.refresh_from_db()
    assert model.label_colours == {"1": "#112233"}
    client.post(url, {"action": "colours-reset"})
    model.refresh_from_db()
    assert model.label_colours == {}
    client.force_login(world["viewer"])
    assert client.post(url, {"action": "colours", "colour_1": "#000000"}).status_code == 403


def test_label_colours_through_the_api(client, world):
    model = world["model"]
    client.force_login(world["owner"])
    response = client.patch(f"/api/models/{model.pk}/", {"label_colours": {"2": "#CC79A7"}}, content_type="application/json")
    assert response.status_code == 200 and response.json()["label_colours"] == {"2": "#cc79a7"}
    assert response.json()["legend"][1]["hex"] == "#cc79a7"
    bad = client.patch(f"/api/models/{model.pk}/", {"name": "New", "label_colours": {"2": "pink"}}, content_type="application/json")
    assert bad.status_code == 400
    model.refresh_from_db()
    assert model.name != "New"  # both changes or neither


def test_prediction_rename_on_its_page(client, world):
    prediction = make_prediction(world["model"])
    client.force_login(world["owner"])
    client.post(f"/predictions/{prediction.pk}/", {"action": "rename", "name": "Baseline scan"})
    prediction.refresh_from_db()
    assert prediction.display_name == "Baseline scan"
    client.force_login(world["viewer"])
    assert client.post(f"/predictions/{prediction.pk}/", {"action": "rename", "name": "x"}).status_code == 403
