"""MMME: expressions timed in seconds within each trial video. (being written.)"""
