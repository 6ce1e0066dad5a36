"""4DME. (being written.)"""
