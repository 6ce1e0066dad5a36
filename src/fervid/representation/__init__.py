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

# Dynamic images and DSSI. The functions ``dynamic_image`` and ``dssi`` are not re-exported
# here: they share their names with their modules, and binding them on this package would hide
# the modules ``fervid.representation.dynamic_image`` / ``.dssi`` (``fervid.dynamic_image`` and
# ``fervid.dssi`` are the functions).
from fervid.representation.dssi import (  # noqa: E402
    DssiCache,
    DssiParams,
    DssiResult,
    dssi_from_sample,
    dssi_indices,
)
from fervid.representation.dynamic_image import (  # noqa: E402
    rank_pool_coefficients,
    standardize,
    to_display,
)

__all__ += ["DssiCache", "DssiParams", "DssiResult", "dssi_from_sample", "dssi_indices",
            "rank_pool_coefficients", "standardize", "to_display"]
