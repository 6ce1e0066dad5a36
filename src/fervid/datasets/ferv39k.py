"""FERV39k. (being written.)"""
