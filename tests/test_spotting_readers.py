"""The spotting releases' readers (CAS(ME)² long videos, SAMM Long Videos): counts on the real
sheets, agreement with the normalised copy of the MEGC ground truth, and ``fervid data check``
on trees generated from the real sheets."""

from __future__ import annotations

import collections
import json
import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.datasets.casme_sq_long import read_casme_sq_intervals
from fervid.datasets.long_videos import GroundTruthInterval
from fervid.datasets.registry import dataset_spec
from fervid.datasets.samm_lv import read_samm_lv_intervals
from fervid.samples import DatasetFormatError

CASME_COUNTS = {"intervals": 357, "subjects": 22, "videos": 95, "micro": 57, "macro": 300,
                "uncoded_offsets": 44, "uncoded_apexes": 1}
SAMM_COUNTS = {"intervals": 502, "subjects": 30, "videos": 147, "micro": 159, "macro": 343,
               "uncoded_offsets": 0, "uncoded_apexes": 6}


def _spotting(*parts: str):
    return shared_path("annotations", "spotting", *parts)


@pytest.mark.parametrize("name", ["CASME_sq_gt.xlsx", "CAS(ME)^2code_final(Updated).csv"])
def test_casme_sq_long_counts_on_the_official_sheet_and_its_csv(name):
    release = read_casme_sq_intervals(_spotting("casme_sq", name))
    assert release.counts() == CASME_COUNTS
    first = release.videos[0]
    assert (first.subject, first.video, first.fps) == ("s15", "15_0401", 30.0)
    assert first.intervals[0] == GroundTruthInterval(557, 572, 608, "macro", first.intervals[0].au,
                                                     1)


@pytest.mark.parametrize("name", ["SAMMLV_gt.xlsx", "SAMM_LongVideos_V2_Release.csv"])
def test_samm_lv_counts_on_the_sheet_and_its_csv(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        release = read_samm_lv_intervals(_spotting("samm_lv", name))
    assert release.counts() == SAMM_COUNTS
    # The MEGC copy writes 430 rows' frames as fractions; the CSV has them rounded.
    assert any("430 frame number(s) are fractional" in str(w.message) for w in caught) == (
        name.endswith(".xlsx"))
    video = release.videos[0]
    assert (video.subject, video.video, video.fps) == ("006", "006_1", 200.0)
    assert video.intervals[0].onset == 566 and video.intervals[0].offset == 743


def test_the_xlsx_and_csv_forms_give_the_same_intervals():
    for read, names in ((read_samm_lv_intervals, ("samm_lv", "SAMMLV_gt.xlsx",
                                                  "SAMM_LongVideos_V2_Release.csv")),
                        (read_casme_sq_intervals, ("casme_sq", "CASME_sq_gt.xlsx",
                                                   "CAS(ME)^2code_final(Updated).csv"))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = (read(_spotting(names[0], n)) for n in names[1:])
        frames = [[(v.video, i.onset, i.apex, i.offset, i.kind) for i in v.intervals]
                  for v in (a, b) for v in v.videos]
        assert frames[:len(a.videos)] == frames[len(a.videos):]


def test_casme_sq_long_agrees_with_the_normalised_copy_interval_for_interval():
    release = read_casme_sq_intervals(_spotting("casme_sq", "CASME_sq_gt.xlsx"))
    ours = collections.Counter(
        (f"casme_0{v.video}", i.onset, i.apex or 0, i.offset or 0, 2 if i.kind == "micro" else 1)
        for v in release.videos for i in v.intervals)
    norm = pd.read_csv(_spotting("normalised", "cas(me)_new.csv"))
    theirs = collections.Counter((r.video_name, r.start_frame, r.apex_frame, r.end_frame,
                                  r.type_idx) for r in norm.itertuples())
    assert ours == theirs
    assert norm.subject.nunique() == 22 and norm.video_name.nunique() == 95


def test_samm_lv_agrees_with_the_normalised_25_fps_copy_but_two_clipped_offsets():
    # samm_new_25.csv is at 25 fps with 0-based frames: int((frame - 1) / 8) of ours (200 fps,
    # from 1). Two offsets run past their video's end there and are clipped to it.
    release = read_samm_lv_intervals(_spotting("samm_lv", "SAMM_LongVideos_V2_Release.csv"))

    def at25(frame):
        return int((frame - 1) / 8)

    ours = collections.Counter(
        (v.video, at25(i.onset), -1 if i.apex is None else at25(i.apex), at25(i.offset),
         2 if i.kind == "micro" else 1) for v in release.videos for i in v.intervals)
    norm = pd.read_csv(_spotting("normalised", "samm_new_25.csv"))
    theirs = collections.Counter((r.video_name.removeprefix("samm_"), r.start_frame,
                                  r.apex_frame, r.end_frame, r.type_idx)
                                 for r in norm.itertuples())
    assert sum((ours - theirs).values()) == 2
    assert dict(ours - theirs) == {("020_6", 441, 539, 684, 1): 1, ("036_7", 734, 787, 1037, 1): 1}
    assert dict(theirs - ours) == {("020_6", 441, 539, 625, 1): 1, ("036_7", 734, 787, 1025, 1): 1}
    assert norm.video_name.nunique() == 147 and norm.subject.nunique() == 30


def test_an_uncoded_offset_ends_at_the_apex_mirrored_within_the_video():
    assert GroundTruthInterval(10, 14, None, "macro").end() == 18
    assert GroundTruthInterval(10, 14, None, "macro").end(n_frames=16) == 16
    assert GroundTruthInterval(10, None, None, "macro").end() == 11
    assert GroundTruthInterval(10, 14, 30, "macro").end(n_frames=16) == 30


def _write_samm_csv(path, rows):
    lines = ["SAMM Long Videos Dataset - FACS Codes,,,,,,,,,", ",,,,,,,,,",
             "Subject,Filename,Inducement Code,Onset,Apex,Offset,Duration,Type,Action Units,"
             "Notes"] + rows
    path.write_text("\n".join(lines) + "\n")
    return path


def test_samm_lv_sheet_errors_name_the_row(tmp_path):
    sheet = _write_samm_csv(tmp_path / "s.csv", ["006,006_1_1,1,50,-1,90,41,Macro,4,",
                                                 "006,006_1_2,1,80,85,70,1,Micro - 1/4,4,"])
    with pytest.raises(DatasetFormatError) as err:
        read_samm_lv_intervals(sheet)
    assert "row 5: Type 'micro - 1/4'" in str(err.value)
    assert "row 5: 006_1_2 needs 0 <= Onset <= Offset" in str(err.value)


def test_absent_video_folders_are_listed_or_skipped(tmp_path):
    sheet = _write_samm_csv(tmp_path / "s.csv", ["006,006_1_1,1,50,-1,90,41,Macro,4,",
                                                 "007,007_2_1,2,5,8,12,8,Micro - 1/3,12,"])
    root = tmp_path / "videos"
    (root / "006_1").mkdir(parents=True)
    (root / "006_1" / "006_1_0123.jpg").touch()
    with pytest.raises(DatasetFormatError, match="video 007_2: no folder of numbered frames"):
        read_samm_lv_intervals(sheet, root)
    release = read_samm_lv_intervals(sheet, root, skip_missing=True)
    assert [v.video for v in release.videos] == ["006_1"] and release.missing == ("007_2",)
    assert release.videos[0].n_frames == 123 and release.videos[0].intervals[0].apex is None


def test_both_names_are_registered_for_spotting_apart_from_the_cut_samples():
    for name in ("casme_sq_long", "samm_lv"):
        spec = dataset_spec(name)
        assert spec.read_intervals is not None and spec.read is None
        assert spec.protocols == ("spotting",)
    assert dataset_spec("casme_sq").read_intervals is None


@pytest.mark.parametrize("module, counts, fps", [("casme_sq_long", CASME_COUNTS, "30"),
                                                 ("samm_lv", SAMM_COUNTS, "200")])
def test_data_check_counts_the_generated_long_video_trees(module, counts, fps, tmp_path):
    import importlib

    tree = importlib.import_module(f"release_trees.{module}").build(tmp_path)
    result = CliRunner().invoke(app, ["data", "check", "--dataset", module, "--data-root",
                                      str(tree["root"]), "--sheet", str(tree["sheet"]),
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"], report["layout_error"]
    assert report["samples"] == counts["intervals"] and report["subjects"] == counts["subjects"]
    assert report["protocols"][0]["counts"] == {"micro": counts["micro"],
                                                "macro": counts["macro"]}
    assert report["per_split"]["videos"] == {"videos": counts["videos"]}
    assert report["per_split"]["uncoded"] == {"offset": counts["uncoded_offsets"],
                                              "apex": counts["uncoded_apexes"]}
    assert report["fps"] == {fps: counts["videos"]} and report["frames"]["clips"] == counts[
        "videos"]
