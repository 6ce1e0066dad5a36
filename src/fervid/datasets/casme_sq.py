"""CAS(ME)²'s cut micro-expression samples. (being written.)"""
