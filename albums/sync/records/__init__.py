"""What the database keeps of a run: photo records, run records and their states, the per-album
lease.
"""
