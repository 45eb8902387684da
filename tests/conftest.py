"""Shared fixtures: moto's S3 server and the bundled TMDB stand-in, both over real sockets."""

from fixtures_s3 import *  # noqa: F403
from fixtures_tmdb import *  # noqa: F403
