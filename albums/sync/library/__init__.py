"""The library on disk: which files are photos, what is left out, where albums are, the three
streams in path order.
"""
