"""CAS(ME)³ Part A (and Part C's micro-expressions). (being written.)"""
