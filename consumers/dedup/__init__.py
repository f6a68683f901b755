"""The dedup worker: data topics -> *.unique.v1, exactly once."""
