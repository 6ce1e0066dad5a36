"""The sections of a run config (model, data, train, run) and the registries' name lookups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from fervid.samples import PROTOCOL_CLASSES

#: MEB's 12 action units (FACS numbers): the default AU list of ``data.task: au``.
MEB_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: Where the names a config field must be one of come from, by kind (``"dataset"``): the
#: registry that owns them installs a lookup ``source(protocol) -> names`` when it is imported
#: (:mod:`fervid.datasets.registry`). Config comes before the registries in the stage order, so
#: it asks them through this table instead of importing them.
_NAME_SOURCES: dict[str, Callable[[str], list[str]]] = {}
#: The same for a protocol's default name (``default(protocol) -> name or None``).
_DEFAULT_SOURCES: dict[str, Callable[[str], str | None]] = {}


def register_name_source(kind: str, source: Callable[[str], list[str]],
                         default: Callable[[str], str | None] | None = None) -> None:
    """Install the lookup of the registered ``kind`` names (see ``_NAME_SOURCES``), and of a
    protocol's default one."""
    _NAME_SOURCES[kind] = source
    if default is not None:
        _DEFAULT_SOURCES[kind] = default


def default_name(kind: str, protocol: str) -> str | None:
    """The registered default ``kind`` name of ``protocol``; None before the registry is
    imported (the reader then resolves it, :func:`fervid.datasets.from_config`)."""
    source = _DEFAULT_SOURCES.get(kind)
    return None if source is None else source(protocol)


def registered_name(kind: str, value: str | None, protocol: str) -> str | None:
    """``value`` when it is a registered ``kind`` name usable under ``protocol``.

    Before the registry is imported nothing is checked here; the registry's own lookup, which
    every reader goes through, refuses the name with the same message then.
    """
    source = _NAME_SOURCES.get(kind)
    if value is None or source is None:
        return value
    names = source(protocol)
    if value not in names:
        raise ValueError(f"unknown {kind} {value!r} for {protocol}; registered: "
                         f"{', '.join(names)}")
    return value


class ModelConfig(_Strict):
    """The network, for every protocol; which names a protocol runs is the model registry's
    (:mod:`fervid.models.registry`), checked by the protocol's config."""

    #: LOSO: ``ststnet`` / ``off_apexnet`` take flow images (``data.format: precomputed``);
    #: ``smastn`` takes DSSI stacks (``dssi``); ``apex_resnet`` the apex frame (``apex``);
    #: ``global_di_resnet`` one global dynamic image (``global_di``); ``htnet`` flow images
    #: (its four facial regions from a fixed template, see :mod:`fervid.models.htnet`).
    #: ``logistic_regression`` / ``linear_svm``: scikit-learn linear models on the flattened
    #: inputs, standardised inside each fold (``run.engine: linear``).
    #: k-fold: a DFEW benchmark network (:mod:`fervid.models.video`) or ``smastn`` over DSSI of
    #: the clip. ``fervid fit``: ``frame_resnet`` (or the single-image baselines' builders).
    name: str = "ststnet"
    drop_rate: float = Field(0.5, ge=0.0, lt=1.0)
    #: The 2D backbone of SMA-STN and the single-image baselines.
    backbone: Literal["resnet18", "resnet34", "resnet50"] = "resnet18"
    #: ``conv1`` of the backbone (or of ``resnet18_lstm``'s frame encoder): ``imagenet`` (7×7,
    #: stride 2) or ``small`` (3×3, stride 1, for faces of about 48 px); see
    #: :class:`fervid.models.smastn.ResNetBackbone`.
    stem: Literal["imagenet", "small"] = "imagenet"
    #: Backbone weights from a local file, never downloaded: a torchvision ``.pth`` or a
    #: fervid checkpoint (e.g. ``fervid fit``'s ``RUN/model.pt``); None: random.
    pretrained_path: str | None = None
    #: STMA spatial part: a non-local block after ``spatial_stage``.
    spatial_attention: bool = True
    spatial_stage: Literal["layer1", "layer2", "layer3", "layer4"] = "layer3"
    #: STMA temporal part: attention over the K segments; False averages them.
    temporal_attention: bool = True
    #: Append the global dynamic image's feature to the clip feature.
    use_global: bool = True
    #: Linear models: the inverse regularisation strength C, and the values
    #: ``train.select: inner_val`` chooses C from inside each fold.
    c: float = Field(0.01, gt=0)
    c_grid: list[float] = Field(default_factory=lambda: [0.001, 0.003, 0.01, 0.03, 0.1])


class DssiConfig(_Strict):
    """DSSI sampling (methods.md §1); see :func:`fervid.dssi`."""

    protocol: Literal["phase", "uniform"] = "phase"
    segments_per_phase: int = Field(2, ge=1)
    n_segments: int = Field(4, ge=1)
    frames_per_segment: int = Field(4, ge=2)
    #: How frames are read: ``rgb``, ``bgr`` or ``gray`` (one channel).
    mode: Literal["rgb", "bgr", "gray"] = "rgb"


class DataConfig(_Strict):
    """LOSO's data: precomputed flow images, frames of a release, or handcrafted features."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    #: ``precomputed``: a folder with index.csv + images (see ``fervid prepare flow``).
    #: ``dssi`` / ``apex`` / ``global_di``: computed from a release's frames (``dataset``).
    #: ``handcrafted``: MEGC2019's LBP-TOP / HOOF feature files (``features`` names the set).
    format: Literal["precomputed", "dssi", "apex", "global_di", "handcrafted"] = "precomputed"
    #: ``handcrafted`` only: the feature set, e.g. ``LBPTOP_TIM10_333_8`` or ``HOOF_TIM10_8``.
    features: str | None = None
    #: The release read for frame-based formats: a registered dataset that supports LOSO
    #: (:mod:`fervid.datasets.registry`). ``--data-root`` is its frame folder, or for a
    #: composite set (MEGC2019) the folder holding the parts named in ``paths``.
    dataset: str | None = None
    #: The dataset's protocol (``5class``, ``3class``, ``all``).
    protocol: str = "5class"
    #: Coding sheet (casme2, samm), relative to ``--data-root`` unless absolute.
    sheet: str | None = None
    #: megc2019 only: where its parts lie, relative to ``--data-root``; keys ``gt``, ``casme2``,
    #: ``casme2_sheet``, ``samm``, ``samm_sheet``, ``smic``.
    paths: dict[str, str] = Field(default_factory=dict)
    #: Side of the square model input, pixels (frame-based formats).
    size: int = Field(112, ge=16)
    dssi: DssiConfig = Field(default_factory=DssiConfig)
    #: ``register``: (``dssi`` / ``global_di`` / ``apex``) register each frame onto its clip's
    #: onset frame before pooling (faces already cropped; :func:`fervid.faces.register_cropped`),
    #: cached with the DSSI. Raw frames: ``fervid prepare faces --align register`` instead.
    #: (Named ``registered`` in Python: pydantic models have a ``register`` method.)
    registered: bool = Field(False, alias="register")
    #: How a DSSI's local dynamic images are standardised before the network: ``image``, each
    #: on its own (methods.md); ``clip``, the K of a clip with one mean and variance, so a
    #: segment with little movement stays faint instead of having its noise stretched to unit
    #: variance. The global dynamic image is standardised on its own either way.
    di_scaling: Literal["image", "clip"] = "image"
    #: Jittered (TSN-style) DSSI views per clip, computed once and cached; each training epoch
    #: draws one per sample. 0: train on the evenly spaced DSSI.
    train_views: int = Field(4, ge=0)
    classes: list[str] = Field(default_factory=lambda: list(PROTOCOL_CLASSES["3class"]))
    #: Image channels fed to the model, in file order (None: all). OFF-ApexNet takes [0, 1].
    channels: list[int] | None = None
    #: Multiplier on the stored 0..255 values. STSTNet's authors fed raw values (1.0).
    scale: float = 1.0
    #: Which model input channel (after ``channels``) holds the horizontal flow u, for
    #: ``train.flow_flip`` (mirroring a flow field negates u). The shared flow images store
    #: strain, v, u: channel 2 with all three channels, 0 with ``channels: [2, 1]``.
    flow_u_channel: int | None = Field(None, ge=0)
    #: Frame-based formats: leave out the clips whose folders or frames are missing or damaged
    #: (their count and first names are printed and kept in run.json) instead of stopping.
    skip_missing: bool = False
    #: ``emotion``: one class per sample (``classes``). ``au``: multi-label detection of the
    #: action units ``aus`` read from the sheets' AU strings (side and intensity ignored);
    #: samples without AU labels are left out of the run.
    task: Literal["emotion", "au"] = "emotion"
    #: ``task: au`` (and ``train.au_weight``): the AUs detected, by FACS number (default
    #: MEB's 12).
    aus: list[int] = Field(default_factory=lambda: list(MEB_AUS), min_length=1)
    #: ``task: au`` (and ``train.au_weight``): AUs of ``aus`` with fewer positives than this
    #: among the run's samples are dropped (every AU's count is printed and kept in
    #: ``metrics.json``).
    au_min_count: int = Field(0, ge=0)
    #: ``task: au`` (and ``train.au_weight``): a folder laid out as the annotations folder,
    #: ``casme2/<CASME II sheet>`` and ``samm/<SAMM sheet>``, whose AU strings are given to
    #: the samples they name (by dataset, subject and clip): how precomputed flow images get
    #: AU labels. Relative to the working directory.
    au_sheets: str | None = None

    @field_validator("dataset")
    @classmethod
    def _registered_dataset(cls, value: str | None) -> str | None:
        return registered_name("dataset", value, "loso")


#: The default release's ``source`` and ``classes`` (DFEW's; :mod:`fervid.datasets.dfew`): what a
#: config naming no ``data.dataset`` gets, as before the field existed, so its fingerprint holds.
_DEFAULT_RELEASE = {"source": "clip_224x224_16f",
                    "classes": ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]}


class VideoDataConfig(_Strict):
    """k-fold's data: clips of a release with its own folds (``--data-root``) and how frames
    are drawn.

    ``source`` and ``classes`` left out are the release's own (its default frame source, its
    label order), filled in when the run reads the release; a config naming no ``dataset``
    reads the table's k-fold default (DFEW) and gets its values here.
    """

    #: The release: a registered dataset with its own folds (``fervid data list``: protocol
    #: ``kfold``), e.g. DFEW (folds 1..5), MAFW (1..5), FERV39k (its train/test split, fold 1).
    #: Left out: the table's k-fold default, DFEW.
    dataset: str | None = None
    #: Where the frames come from, one of the release's sources: DFEW ``clip_224x224_16f``
    #: (default), ``clip_224x224``, ``original``; MAFW ``faces`` (default), ``frames``,
    #: ``clips``; FERV39k ``2_ClipsforFaceCrop`` (default), ``0_7_LabelClips``.
    source: str | None = None
    #: Split files, relative to ``--data-root`` unless absolute; default the release's own
    #: (DFEW ``EmoLabel_DataSplit``, MAFW ``Train & Test Set/single/no_caption``, FERV39k
    #: ``4_setups/All_scenes``). MAFW and FERV39k also read DFER-CLIP-style lists
    #: (``MAFW_set_N_{train,test}.txt``, ``FERV39K_{train,test}.txt``) from here.
    split_dir: str | None = None
    num_frames: int = Field(16, ge=1)
    #: ``uniform``, ``random`` (random sorted), ``tsn`` or ``tim`` (time interpolation).
    train_sampling: Literal["uniform", "random", "tsn", "tim"] = "tim"
    eval_sampling: Literal["uniform", "random", "tsn", "tim"] = "tim"
    size: int = Field(112, ge=16)
    grayscale: bool = False
    #: ``clip``: ``(C, T, H, W)``; ``dssi``: K = 4 local DIs + 1 global over the sampled frames
    #: (``uniform`` DSSI protocol), ``(K+1, C, H, W)``, for ``smastn``.
    representation: Literal["clip", "dssi"] = "clip"
    #: Drop missing or unreadable clips (logged with their count) instead of stopping.
    skip_missing: bool = False
    #: Class names in label order: the release's own (a run refuses others, naming them).
    classes: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_au_task(cls, raw):
        # The k-fold releases (DFEW, MAFW, FERV39k) code no action units.
        if isinstance(raw, dict):
            asked = [k for k in ("task", "aus", "au_sheets", "au_min_count") if k in raw]
            if asked:
                raise ValueError(
                    f"{', '.join(asked)}: k-fold runs the emotion folds of video releases, "
                    "none coded with action units; run AU detection with fervid loso "
                    "(by subject, or --group dataset)")
        return raw

    @field_validator("dataset")
    @classmethod
    def _registered_dataset(cls, value: str | None) -> str | None:
        return registered_name("dataset", value, "kfold")

    @model_validator(mode="after")
    def _default_release(self):
        if self.dataset is None:
            for key, value in _DEFAULT_RELEASE.items():
                if getattr(self, key) is None:
                    setattr(self, key, list(value) if isinstance(value, list) else value)
        return self


class FitDataConfig(_Strict):
    """``fervid fit``'s data: still faces of a release (``--data-root``) and how they are fed."""

    #: A registered dataset that supports the hold-out protocol (still faces): FER2013
    #: (``fer2013.csv`` or the image-folder release), an image folder (``<class>/<image>``,
    #: faces already cropped) or CK+ (each sequence's last frame). Default: the one the
    #: dataset table names for hold-out (FER2013).
    dataset: str | None = Field(None, validate_default=True)
    #: Side images are resized to first, pixels.
    resize: int = Field(48, ge=8)
    #: Side of the model input: training takes random ``size`` crops, evaluation the centre.
    size: int = Field(40, ge=8)
    grayscale: bool = True
    #: Mirror training faces at random.
    hflip: bool = True
    #: Class names in label order; None: the release's.
    classes: list[str] | None = None
    #: Where the release has no validation split: the fraction of training samples held out
    #: to choose the epoch (whole subjects when the release names them, else per class;
    #: seeded); 0 trains on all and keeps the last epoch.
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)

    @field_validator("dataset")
    @classmethod
    def _registered_dataset(cls, value: str | None) -> str | None:
        return registered_name("dataset", value or default_name("dataset", "holdout"),
                               "holdout")

    @model_validator(mode="after")
    def _crop_fits(self):
        if self.size > self.resize:
            raise ValueError(f"data.size {self.size} is larger than data.resize "
                             f"{self.resize}: the input is a crop of the resized face")
        return self


class TrainConfig(_Strict):
    """Every training option of every protocol; the defaults here are LOSO's (k-fold and
    ``fervid fit`` lay their own over them, see ``SECTION_DEFAULTS``)."""

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(800, ge=1)
    #: ``none``: plain cross-entropy (the papers); ``balanced``: each fold's classes weighted
    #: ``n / (K·n_c)`` from its own training labels.
    class_weights: Literal["none", "balanced"] = "none"
    #: Adam's fused implementation (one kernel over all parameters): several times faster per
    #: step for large models on small inputs; rounds differently from the default loop.
    fused_optimizer: bool = False
    #: Loss on the clip features beside cross-entropy: ``de`` (DE-Loss, methods.md §1),
    #: ``center`` (centre loss) or ``none``. Needs a model that returns features (SMA-STN).
    feature_loss: Literal["none", "de", "center", "ec_stfl"] = "none"
    #: lambda in ``CE + lambda * feature loss`` (methods.md: 0.1 for DE-Loss, 10 for EC-STFL).
    feature_loss_weight: float = Field(0.1, ge=0)
    #: EC-STFL form: ``eq9`` (the paper's Eq. 9) or ``code2024`` (the authors' later code).
    ec_stfl_variant: Literal["eq9", "code2024"] = "eq9"
    #: DE-Loss margin (on L2-normalised features).
    de_margin: float = Field(1.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    #: Mirror each training sample left-right with probability 1/2, flow-aware: the u
    #: channel (``data.flow_u_channel``) is negated about the middle of its stored range.
    flow_flip: bool = False
    #: Average the weights at the end of each of the last N epochs (stochastic weight
    #: averaging; BatchNorm statistics recomputed on the fold's training data); 0: off.
    average_last: int = Field(0, ge=0)
    #: Nesterov momentum for ``optimizer: sgd``.
    nesterov: bool = False
    #: ``onecycle``: the learning rate rises to ``lr`` over the first 20% of the steps, then
    #: anneals (cosine) to nearly zero; ``constant``.
    schedule: Literal["constant", "onecycle"] = "constant"
    #: LOSO: the model kept in each fold: ``last`` (the last epoch, or ``model.c``), or
    #: ``inner_val``: the epoch count (deep models) or C from ``model.c_grid`` (linear
    #: models) that scores best on a leave-subjects-out split of that fold's training
    #: subjects; deep models then train again on all of them. The test subject never
    #: chooses.
    select: Literal["last", "inner_val"] = "last"
    #: ``inner_val`` and LOSO's ``best_validation``: the fraction of a fold's training
    #: subjects held out for validation (linear models: the number of inner folds is
    #: ``round(1 / fraction)``); k-fold's ``best_validation``: of its training clips.
    select_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    #: ``inner_val`` for deep models: epochs between validation checks.
    select_every: int = Field(10, ge=1)
    #: The model kept: the epoch of best validation accuracy (``best_validation``) or the
    #: last one. The validation split is the release's or one carved from the training data
    #: (``fit``: ``data.validation_fraction``; LOSO: ``select_fraction`` of each fold's
    #: training subjects, sequential engine; k-fold: ``select_fraction`` of each fold's
    #: training clips). The test samples never choose.
    selection: Literal["best_validation", "last"] = "last"
    #: LOSO emotion runs: action units as an aid. An AU head (``data.aus``, kept by
    #: ``data.au_min_count``: one sigmoid each) beside the emotion head, on the same clip
    #: feature; the loss adds ``au_weight`` x binary cross-entropy over the AUs of the samples
    #: with AU labels only (``data.au_sheets`` or the release's AU strings), positive weights
    #: ``n_neg / n_pos`` from each fold's training samples with AU labels. Emotion is scored as
    #: ever. 0: off (no AU head, the run as before). Sequential engine.
    au_weight: float = Field(0.0, ge=0)


class RunConfig(_Strict):
    """Where and how a run trains (through Lightning Fabric), for every protocol."""

    accelerator: str = "auto"
    devices: int = Field(1, ge=1)
    num_nodes: int = Field(1, ge=1)
    #: ``auto`` (``bf16-mixed`` where the hardware computes bfloat16 natively: a GPU that
    #: supports it, or a CPU with ``avx512_bf16``/``amx_bf16``; ``32-true`` elsewhere, see
    #: :func:`fervid.training.setup.resolve_precision`); ``32-true``; ``bf16-mixed`` (matrix
    #: products in bfloat16, accumulated, stored and optimised in float32); ``16-mixed``.
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    #: ``fold_batched`` (LOSO's default): the folds' models as one batched model (STSTNet
    #: only); results depend on how folds are grouped (``--folds``, workers),
    #: deterministically; ``sequential``: one fold after another, any model; each fold's
    #: result depends on (seed, fold) only.
    #: ``linear``: scikit-learn models (``logistic_regression``, ``linear_svm``).
    engine: Literal["fold_batched", "sequential", "linear"] = "sequential"
    #: Samples per fused step of the batched STSTNet (keeps conv maps in cache).
    chunk: int = Field(4, ge=1)
    #: Seconds between resumable checkpoints of a batched run.
    checkpoint_every_s: float = Field(120.0, gt=0)
    #: Local worker processes, each training a disjoint shard of folds. On a CPU, small
    #: models run faster as N single-threaded processes than as one N-threaded process.
    workers: int = Field(1, ge=1)
    #: Torch intra-op threads per process (0: torch's default, or 1 per worker when workers > 1).
    threads: int = Field(0, ge=0)
    #: Keep each fold's test predictions every N epochs (and the last) in ``traces/``, for
    #: the report's "test-selected (not a valid result)" row; 0: off. Never chooses a model.
    trace_every: int = Field(0, ge=0)
    #: DataLoader worker processes per device (each holds one batch of decoded frames);
    #: 0 loads in the training process (k-fold's default is 2).
    num_workers: int = Field(0, ge=0)
    #: Batches each worker prepares ahead (bounds memory: workers x prefetch batches).
    prefetch_factor: int = Field(2, ge=1)
