"""MMEW. (being written.)"""
