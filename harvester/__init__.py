"""harvester: asynchronous, rate-limited TMDB harvester that streams JSON chunks to S3."""

__version__ = "0.1.0"
