"""The one exception tree of the harvester.

    HarvesterError            exit 1: a failure we know how to describe
    ├── ConfigError           exit 2: bad config file, key, value or CLI argument
    ├── SourceError           exit 2: the input cannot be read as one, has the wrong shape, or changed
    ├── StateError            exit 2: the saved state is corrupt or belongs to another run
    ├── CredentialError       exit 3: TMDB rejected (or we lack) the credential
    ├── StorageError          exit 4: S3, Secrets Manager or the output directory is unusable or unavailable
    │   ├── SinkError                 the output location (bucket missing, no access, not writable, ...)
    │   ├── InputUnavailable          an input on S3 could not be read to the end (resets, 5xx, ...)
    │   └── SecretUnavailable         Secrets Manager unreachable or failing for the TMDB secret
    ├── TmdbUnavailable       exit 5: TMDB keeps failing; stopping beats recording everything as failed
    ├── NotReady              exit 5: what this harvest reads is not there yet (a people harvest's `from`)
    ├── WriterConflict        exit 6: another run writes this harvest; nothing was changed
    │   ├── LeaseHeld                 a live lease: another run is harvesting, try again later
    │   ├── LeaseLost                 this run's lease expired or was taken over while it ran
    │   └── PreconditionFailed        a conditional write found the object changed (S3 412 / 409)
    └── Interrupted           exit 75 (EX_TEMPFAIL): stopped on purpose; state saved, run again to resume

Lower layers translate aiohttp/botocore/OS errors into these at their boundary, so the CLI can print
one line and exit with the documented code. Messages never carry a credential.
A scheduler should retry 5, 6 and 75 (later); 2, 3 and 4 need a person.
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


class StorageError(HarvesterError):
    exit_code = 4


class SinkError(StorageError):
    pass


class InputUnavailable(StorageError):
    pass


class SecretUnavailable(StorageError):
    """Secrets Manager could not be reached, or kept failing, after botocore's retries."""


class TmdbUnavailable(HarvesterError):
    exit_code = 5


class NotReady(HarvesterError):
    """The harvest a people harvest reads (`from`) has not completed a run yet: nothing is wrong here,
    run again once it has (the "try later" class, as TMDB unavailable is)."""

    exit_code = 5


class WriterConflict(HarvesterError):
    exit_code = 6


class LeaseHeld(WriterConflict):
    pass


class LeaseLost(WriterConflict):
    pass


class PreconditionFailed(WriterConflict):
    """Raised by a sink when `if_match` / `if_none_match` does not hold. The lease and the state store
    catch it and say what it means; it reaches the user only as a LeaseLost."""


class Interrupted(HarvesterError):
    exit_code = 75


def first_known(group: BaseExceptionGroup[BaseException]) -> HarvesterError | None:
    """The first of our errors in what a TaskGroup raised: the one line the user gets."""
    for exc in group.exceptions:
        if isinstance(exc, HarvesterError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = first_known(exc)
            if found is not None:
                return found
    return None


EXIT_OK = 0
EXIT_INTERRUPTED = Interrupted.exit_code
