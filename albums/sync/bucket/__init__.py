"""The bucket's side of a run: the thread pool, the listing, and what goes up, is copied or deleted
(no database here).
"""
