"""Commands around training: ``ftlit inspect`` (the data before a run) and ``ftlit compare`` (finished runs)."""
