"""Shared fixtures: moto's S3 server and the bundled TMDB stand-in, both over real sockets."""

import logging

from fixtures_s3 import *  # noqa: F403
from fixtures_tmdb import *  # noqa: F403

# moto's server logs every request at INFO; failures are easier to read without them
logging.getLogger("werkzeug").setLevel(logging.WARNING)
