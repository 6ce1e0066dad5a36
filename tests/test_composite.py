"""Cross-dataset composites built from the dataset table (fervid.datasets.composite)."""

from __future__ import annotations

import csv
import warnings

import pytest

from fervid.datasets.composite import Part, parts_from_paths, read_composite
from fervid.errors import OptionError
from fervid.samples import DatasetFormatError


@pytest.fixture(scope="module")
def megc_parts(casme2_release, samm_release, smic_release):
    (casme2_root, casme2_sheet), (samm_root, samm_sheet) = casme2_release, samm_release
    # The ground truth's order: CASME II, SMIC, SAMM.
    return [Part("casme2", casme2_root, casme2_sheet), Part("smic", smic_release[0]),
            Part("samm", samm_root, samm_sheet)]


def test_megc2019_from_the_registry_equals_its_ground_truth_row_for_row(shared, megc_parts):
    with open(shared("annotations", "megc2019", "combined_3class_gt.csv"), newline="") as f:
        gt = [(d, s, c, int(label)) for d, s, c, label in csv.reader(f)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = read_composite(megc_parts, "3class")
    # SAMM's ground-truth subjects are unpadded ("6"); the reader's are the folder's ("006").
    got = [(s.dataset, s.subject.lstrip("0") if s.dataset == "samm" else s.subject, s.clip,
            s.label) for s in table]
    assert got == gt
    assert len(table) == 442 and len(table.subjects) == 68
    assert table.classes == ("negative", "positive", "surprise")


def test_subjects_stay_distinct_per_dataset_and_a_drop_list_applies(megc_parts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = read_composite(megc_parts[:1], "3class")
        dropped = read_composite(megc_parts[:1], "3class", drop=[whole[0].key])
    assert len(dropped) == len(whole) - 1 and dropped[0].key != whole[0].key
    with pytest.raises(DatasetFormatError, match="drop list: no labelled sample casme2_x_y"):
        read_composite(megc_parts[:1], "3class", drop=["casme2_x_y"])


def test_composite_refusals_are_one_line(megc_parts, tmp_path):
    with pytest.raises(OptionError, match="casme2 listed more than once"):
        read_composite([megc_parts[0], megc_parts[0]], "3class")
    with pytest.raises(OptionError, match="smic has no protocol '5class'"):
        read_composite(megc_parts, "5class")
    with pytest.raises(OptionError, match="unknown dataset 'nope'"):
        read_composite([Part("nope", tmp_path)], "3class")
    with pytest.raises(OptionError, match="samm_sheet name"):
        parts_from_paths({"casme2": tmp_path, "samm_sheet": tmp_path / "x.xlsx"})
    # Every part's problems at once, each named by its dataset.
    with pytest.raises(DatasetFormatError) as err:
        read_composite([Part("casme2", tmp_path / "none", megc_parts[0].sheet),
                        Part("smic", tmp_path / "nothing")], "3class")
    assert "casme2: " in str(err.value) and "smic: " in str(err.value)
    assert "\n" not in str(err.value)


def _frames(folder, names, rng, step):
    import cv2
    import numpy as np

    folder.mkdir(parents=True)
    for n, name in enumerate(names):
        image = rng.normal(100, 5, (24, 24)).clip(0, 255).astype(np.uint8)
        cv2.circle(image, (12 + step * n, 12), 3, 220, -1)
        cv2.imwrite(str(folder / name), image)


def _two_small_releases(base):
    """A CASME II tree with its sheet and an SMIC-HS tree, 2 subjects each, real tiny frames:
    a negative clip's blob moves left, a positive one's right."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for s in (1, 2):
        for c, emotion in enumerate(("disgust", "happiness", "repression", "happiness")):
            clip = f"EP0{c + 1}_01"
            _frames(base / "casme2" / f"sub0{s}" / clip, [f"img{n}.jpg" for n in range(10, 16)],
                    rng, 1 if emotion == "happiness" else -1)
            rows.append({"Subject": f"0{s}", "Filename": clip, "OnsetFrame": 10,
                         "ApexFrame": 12, "OffsetFrame": 15, "Estimated Emotion": emotion})
    sheet = base / "casme2_sheet.xlsx"
    pd.DataFrame(rows).to_excel(sheet, index=False)
    for s in (1, 2):
        for c, (code, emotion) in enumerate((("ne", "negative"), ("po", "positive")) * 2):
            _frames(base / "smic" / "HS" / f"s{s}" / "micro" / emotion / f"s{s}_{code}_{c + 1}",
                    [f"image{n:06d}.bmp" for n in range(100, 106)], rng,
                    1 if emotion == "positive" else -1)
    return sheet


@pytest.mark.parametrize("group", ["subject", "dataset"])
def test_a_composite_runs_loso_by_subject_and_by_dataset_through_the_cli(tmp_path, group):
    from typer.testing import CliRunner

    from fervid.cli import app

    _two_small_releases(tmp_path / "data")
    config = tmp_path / "composite.yaml"
    config.write_text(
        "name: composite_apex\n"
        "model: {name: apex_resnet, drop_rate: 0.0, stem: small}\n"
        "data: {format: apex, dataset: composite, protocol: 3class,\n"
        "       paths: {casme2: casme2, casme2_sheet: casme2_sheet.xlsx, smic: smic},\n"
        "       classes: [negative, positive, surprise], size: 16, dssi: {mode: gray}}\n"
        "train: {optimizer: adam, lr: 0.001, batch_size: 8, epochs: 1}\n"
        "run: {engine: sequential, workers: 1, accelerator: cpu, precision: 32-true}\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["loso", "--config", str(config), "--data-root",
                                      str(tmp_path / "data"), "--out", str(out), "--group",
                                      group, "--no-progress"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 16  # every clip tested once
    datasets_per_fold = predictions.groupby("fold")["dataset"].nunique()
    # By subject: 2 subjects of each dataset, 4 folds; by dataset: one fold per dataset.
    assert len(datasets_per_fold) == (4 if group == "subject" else 2)
    assert (datasets_per_fold == 1).all()
