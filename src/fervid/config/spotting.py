"""The config of a spotting run (``fervid spot --config``): which release, which spotter, and
the spotter's settings, validated; YAML under ``configs/spot_*.yaml``.

Two spotters: ``flow`` (training-free, :mod:`fervid.predict.spotting`; its section ``flow``)
and ``softnet`` (a shallow network over optical flow, :mod:`fervid.predict.spot_learned`; its
section ``softnet``). Both are run leave-one-subject-out, their thresholds chosen per held-out
subject from ``select.grid`` on the training subjects only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fervid.config.sections import registered_name

#: Generated SynthME long videos (:mod:`fervid.synth.long_video`), read with CAS(ME)²'s reader.
SYNTHME_LONG = "synthme_long"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SynthmeLongConfig(_Strict):
    """What to generate under ``data.root`` when it holds no SynthME long videos yet."""

    subjects: int = Field(4, ge=2, le=22)
    videos: int = Field(2, ge=1, le=9)
    seconds: float = Field(60.0, gt=0)
    micro: int = Field(4, ge=0)
    macro: int = Field(3, ge=0)
    size: int = Field(160, ge=64)
    seed: int = 1


class SpotDataConfig(_Strict):
    """The release: ``dataset`` a registered spotting release (``casme_sq_long``, ``samm_lv``)
    or ``synthme_long``; ``root`` its frame folder (``--data-root``; for ``synthme_long`` the
    generated folder, its sheet found there), ``sheet`` its coding sheet."""

    dataset: str = SYNTHME_LONG
    root: str | None = None
    sheet: str | None = None
    skip_missing: bool = False
    #: ``synthme_long`` only: generate these videos when ``root`` holds none.
    generate: SynthmeLongConfig | None = None

    @field_validator("dataset")
    @classmethod
    def _known(cls, value: str) -> str:
        return value if value == SYNTHME_LONG else registered_name("dataset", value,
                                                                   "spotting")

    @model_validator(mode="after")
    def _sheet(self):
        if self.dataset == SYNTHME_LONG and self.sheet is not None:
            raise ValueError("data.sheet: synthme_long reads the sheet in its folder; leave "
                             "it out")
        if self.generate is not None and self.dataset != SYNTHME_LONG:
            raise ValueError("data.generate: only for data.dataset synthme_long")
        return self


class FlowSpotConfig(_Strict):
    """The training-free spotter's settings (:class:`fervid.predict.spotting.SpotSettings`);
    ``z_micro``/``z_macro`` are its default thresholds (the LOSO chooses them)."""

    micro_k_seconds: float = Field(0.2, gt=0)
    macro_k_seconds: float = Field(1.3, gt=0)
    max_micro_seconds: float = Field(0.5, gt=0)
    z_micro: float = Field(6.0, gt=0)
    z_macro: float = Field(6.0, gt=0)
    crop: int = Field(128, ge=32)
    region: float = Field(0.08, gt=0, lt=0.5)
    detect_every: int = Field(5, ge=1)


class SoftnetSpotConfig(_Strict):
    """The learned spotter (:mod:`fervid.predict.spot_learned`): flow from ``k`` frames back
    (``micro_k_seconds``, ``macro_k_seconds``: about half the kind's mean length), ``size`` px
    inputs, trained ``epochs`` with Adam at ``lr`` on every expression frame and
    ``negatives_per_positive`` times as many others drawn anew each epoch; thresholds chosen
    on scores of the training subjects from ``inner_folds`` inner splits of them."""

    micro_k_seconds: float = Field(0.16, gt=0)
    macro_k_seconds: float = Field(0.8, gt=0)
    max_micro_seconds: float = Field(0.5, gt=0)
    size: int = Field(42, ge=16, le=128)
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-3, gt=0)
    negatives_per_positive: float = Field(3.0, gt=0)
    inner_folds: int = Field(2, ge=2)
    #: The face crop the flow is computed on (px): the flow is resized to ``size`` anyway.
    crop: int = Field(64, ge=32)
    detect_every: int = Field(5, ge=1)


class SelectConfig(_Strict):
    """The thresholds' grid (micro × macro), for the LOSO choice; None: the spotter's own
    (flow: robust z 3, 4, 5, 6, 8, 10; softnet: score 0.1 … 0.9)."""

    grid: list[float] | None = None

    @field_validator("grid")
    @classmethod
    def _not_empty(cls, value):
        if value is not None and not value:
            raise ValueError("give at least one threshold, or leave it out")
        return value


class SpotConfig(_Strict):
    """A spotting run: ``fervid spot --config C --data-root D --out RUN``."""

    name: str = "spot"
    spotter: Literal["flow", "softnet"] = "flow"
    seed: int = 0
    data: SpotDataConfig = SpotDataConfig()
    flow: FlowSpotConfig = FlowSpotConfig()
    softnet: SoftnetSpotConfig = SoftnetSpotConfig()
    select: SelectConfig = SelectConfig()
    #: Threads the learned spotter's training may use (None: one).
    threads: int | None = Field(None, ge=1)


__all__ = ["SYNTHME_LONG", "FlowSpotConfig", "SelectConfig", "SoftnetSpotConfig",
           "SpotConfig", "SpotDataConfig", "SynthmeLongConfig"]
