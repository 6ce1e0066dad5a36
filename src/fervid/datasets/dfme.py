"""DFME (MEGC's set since 2023): training, testA and testB. (being written.)"""
