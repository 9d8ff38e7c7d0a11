"""What the doors call: sync, verify and restore an album or many, and queue them for the workers."""
