"""The pass over one album: what each photo needs (decide), what the run does with it, and whether
an error stops the run (failures).
"""
