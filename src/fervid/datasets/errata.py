"""Known errors of the released coding sheets, corrected in one table. (being written.)"""
