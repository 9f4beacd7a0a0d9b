"""`aggregator live`: the streaming sources continuously, the polling ones every few minutes. Being built (issue 16)."""
