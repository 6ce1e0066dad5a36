"""CASME (I). (being written.)"""
