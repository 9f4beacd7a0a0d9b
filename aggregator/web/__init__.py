"""`aggregator serve`: the venue wall and the moderation page (docs/live.md). `app.create_app` builds
the ASGI app (Starlette); `wall` reads what the pages show, `rules` decides what the wall shows,
`auth` signs moderators in; the decisions themselves are stored by storage.moderation."""
