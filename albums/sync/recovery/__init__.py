"""Reading the bucket back: verify every photo's file, record and object; restore photos from the
bucket.
"""
