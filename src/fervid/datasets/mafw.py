"""MAFW. (being written.)"""
