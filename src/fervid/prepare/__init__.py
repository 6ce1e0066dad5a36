"""Preparing data from raw footage: faces, optical flow, raw clips, the process pool."""
