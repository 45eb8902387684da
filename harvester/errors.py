"""The one exception tree of the harvester.

    HarvesterError            exit 1: a failure we know how to describe
    ├── ConfigError           exit 2: bad config file, key, value or CLI argument
    ├── SourceError           exit 2: the input cannot be read or has the wrong shape
    ├── StateError            exit 2: the saved state is corrupt or belongs to another run
    ├── CredentialError       exit 3: TMDB rejected (or we lack) the credential
    ├── SinkError             exit 4: the output location is unusable
    ├── TmdbUnavailable       exit 5: TMDB keeps failing; stopping beats recording everything as failed
    └── Interrupted           exit 75 (EX_TEMPFAIL): stopped on purpose; state saved, run again to resume

Lower layers translate aiohttp/botocore/OS errors into these at their boundary, so the CLI can print
one line and exit with the documented code. Messages never carry a credential.
"""

from __future__ import annotations


class HarvesterError(Exception):
    exit_code = 1


class ConfigError(HarvesterError):
    exit_code = 2


class SourceError(HarvesterError):
    exit_code = 2


class StateError(HarvesterError):
    exit_code = 2


class CredentialError(HarvesterError):
    exit_code = 3


class SinkError(HarvesterError):
    exit_code = 4


class TmdbUnavailable(HarvesterError):
    exit_code = 5


class Interrupted(HarvesterError):
    exit_code = 75


EXIT_OK = 0
EXIT_INTERRUPTED = Interrupted.exit_code
