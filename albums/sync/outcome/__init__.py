"""What a run found and did: its counts as they grow (tally) and the frozen result every door
reports.
"""
