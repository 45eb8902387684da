"""Talking to TMDB: the HTTP client, the lookup of a title with the fewest requests, the rate limiter
and the back-off it uses."""
