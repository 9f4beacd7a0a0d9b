"""`aggregator serve`: the venue wall and the moderation page (Starlette on uvicorn). Being built (issue 16)."""
