"""The sample table: where dataset readers meet representations and protocols.

A reader turns an official release into a :class:`SampleTable`, one :class:`Sample` per clip.
Everything downstream (flow, dynamic images, LOSO folds, metrics) reads only this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from fervid.errors import FervidError

#: Class names under each micro-expression protocol, in label order.
PROTOCOL_CLASSES: dict[str, tuple[str, ...]] = {
    "3class": ("negative", "positive", "surprise"),
    "casme2_5class": ("happiness", "disgust", "repression", "surprise", "others"),
    "samm_5class": ("anger", "contempt", "happiness", "surprise", "other"),
}


@dataclass(frozen=True)
class Sample:
    """One clip of a dataset.

    Frame indices (``onset``, ``apex``, ``offset``) are the dataset's own absolute frame numbers;
    ``frames`` lists the image files from onset to offset in temporal order, so
    ``frames[apex - onset]`` is the apex image; a still image is a clip of one frame
    (``onset == apex == offset``). ``label`` is the class index under the protocol
    the table was read with, or ``None`` when the emotion is outside that protocol.
    """

    dataset: str
    subject: str
    clip: str
    onset: int
    apex: int
    offset: int
    emotion: str
    label: int | None
    frames: tuple[Path, ...] = field(default=(), repr=False)
    #: The release's own split (``train``, ``validation``, ``test``), or ``""`` where it
    #: defines none.
    split: str = ""
    #: The action units as the release's sheet writes them (``"AU4+AU7"``, ``"R12"``), or
    #: ``""`` where it codes none.
    au: str = ""
    #: Frames per second of this clip (DFME films at 200, 300 or 500); 0 when unknown. Clip
    #: representations sample by position within onset..offset, so they do not depend on it.
    fps: float = 0.0

    @property
    def key(self) -> str:
        """A unique, file-name-safe id: ``dataset_subject_clip``."""
        return f"{self.dataset}_{self.subject}_{self.clip}"

    @property
    def apex_position(self) -> int:
        """Index of the apex inside ``frames``."""
        return self.apex - self.onset


class ClipProblem(str):
    """A problem of one clip (its folder or frames missing or damaged): the text a
    :class:`DatasetFormatError` lists, carrying the clip it concerns, so a reader asked to
    skip such clips (``ReadRequest.skip_missing``) drops the clip instead of failing, and
    records it in :attr:`SampleTable.skipped`.

    A ``str``, so problem lists stay lists of text wherever they are joined or printed.
    """

    dataset: str
    subject: str
    clip: str

    def __new__(cls, text: str, dataset: str, subject: str, clip: str) -> ClipProblem:
        self = super().__new__(cls, text)
        self.dataset, self.subject, self.clip = dataset, subject, clip
        return self

    def __reduce__(self):  # picklable with its clip (a worker process sends it back)
        return type(self), (str(self), self.dataset, self.subject, self.clip)

    @property
    def name(self) -> str:
        """``dataset/subject/clip``: the clip as run records and messages name it."""
        return f"{self.dataset}/{self.subject}/{self.clip}"

    def prefixed(self, prefix: str) -> ClipProblem:
        """The same problem of the same clip, its text after ``prefix`` (a path, a part)."""
        return ClipProblem(prefix + self, self.dataset, self.subject, self.clip)


def with_prefix(prefix: str, problem: str) -> str:
    """``problem`` after ``prefix``, still a :class:`ClipProblem` when it was one."""
    return problem.prefixed(prefix) if isinstance(problem, ClipProblem) else prefix + problem


#: What a :class:`DatasetFormatError` listing clip problems adds: how to run without them.
SKIP_HINT = ("pass --skip-missing (data.skip_missing: true) to leave out the {n} clip(s) with "
             "missing or damaged frames")


@dataclass
class SampleTable:
    """An ordered collection of samples plus the class names of its protocol.

    ``skipped`` lists the clips a reader dropped because their folders or frames are missing
    or damaged (asked to with ``ReadRequest.skip_missing``), each with its problem; it is
    kept through :meth:`labelled`, :meth:`filter` and :meth:`concat`.
    """

    samples: list[Sample]
    classes: tuple[str, ...]
    protocol: str = ""
    skipped: tuple[ClipProblem, ...] = ()

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def subjects(self) -> list[str]:
        """Distinct subjects (``dataset/subject``), in order of first appearance."""
        return list(dict.fromkeys(subject_key(s) for s in self.samples))

    def labelled(self) -> SampleTable:
        """The samples whose emotion belongs to the protocol (``label is not None``)."""
        return SampleTable([s for s in self.samples if s.label is not None], self.classes,
                           self.protocol, self.skipped)

    def filter(self, keep: Iterable[bool]) -> SampleTable:
        return SampleTable([s for s, k in zip(self.samples, keep, strict=True) if k],
                           self.classes, self.protocol, self.skipped)

    def to_frame(self) -> pd.DataFrame:
        """One row per sample; ``frames`` becomes ``n_frames``."""
        rows = []
        for s in self.samples:
            row = asdict(s)
            row["n_frames"] = len(row.pop("frames"))
            rows.append(row)
        columns = ["dataset", "subject", "clip", "onset", "apex", "offset", "emotion", "label",
                   "n_frames"]
        return pd.DataFrame(rows, columns=columns)

    @staticmethod
    def concat(tables: Sequence[SampleTable]) -> SampleTable:
        classes = {t.classes for t in tables}
        if len(classes) != 1:
            raise ValueError(f"cannot join tables with different classes: {sorted(classes)}")
        return SampleTable([s for t in tables for s in t.samples], tables[0].classes,
                           tables[0].protocol, tuple(p for t in tables for p in t.skipped))


def subject_key(sample: Sample) -> str:
    """Subjects are only unique within a dataset, so folds are keyed by both."""
    return f"{sample.dataset}/{sample.subject}"


class DatasetFormatError(FervidError, ValueError):
    """A release on disk does not match the official layout.

    The message (one line) names the path and lists up to ten of the problems found, so one run
    shows what is wrong instead of failing at the first missing key. When some are problems of
    single clips (:class:`ClipProblem`), it ends by saying how to run without those clips.
    """

    MAX_LISTED = 10

    def __init__(self, path: Path | str, problems: Sequence[str]):
        self.path = Path(path)
        self.problems = list(problems)
        shown = self.problems[: self.MAX_LISTED]
        more = len(self.problems) - len(shown)
        # One line, as the CLI prints an error: "PATH: N problem(s): a; b; ...".
        text = f"{self.path}: {len(self.problems)} problem(s): " + "; ".join(shown)
        if more:
            text += f"; ... and {more} more"
        clips = len({p.name for p in self.clip_problems})
        if clips:
            text += "; " + SKIP_HINT.format(n=clips)
        super().__init__(text)

    @property
    def clip_problems(self) -> list[ClipProblem]:
        """The problems of single clips, which ``skip_missing`` drops."""
        return [p for p in self.problems if isinstance(p, ClipProblem)]

    def __reduce__(self):  # picklable: a worker process sends it back to the parent
        return type(self), (self.path, self.problems)


class SampleError(FervidError, ValueError):
    """The user's clips cannot give the input asked for (too few frames, an apex outside the
    frames, frames of different sizes, no clips at all); the message names the clip."""
