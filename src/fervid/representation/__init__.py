"""Clip representations computed from the frames of a :class:`~fervid.samples.Sample`."""

from fervid.representation.optical_flow import (
    MEGC2019_CHANNELS,
    TVL1Params,
    optical_strain,
    read_gray,
    ststnet_input,
    ststnet_input_from_files,
    tvl1_flow,
)

__all__ = ["MEGC2019_CHANNELS", "TVL1Params", "optical_strain", "read_gray", "ststnet_input",
           "ststnet_input_from_files", "tvl1_flow"]
