"""TMDB's error answers: each status_code's HTTP status and message, and the body that carries them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

# TMDB status_code -> (HTTP status, status_message), from developer.themoviedb.org/docs/errors
ERRORS: Final[Mapping[int, tuple[int, str]]] = {
    3: (401, "Authentication failed: You do not have permissions to access the service."),
    5: (422, "Invalid parameters: Your request parameters are incorrect."),
    6: (404, "Invalid id: The pre-requisite id is invalid or not found."),
    7: (401, "Invalid API key: You must be granted a valid key."),
    9: (503, "Service offline: This service is temporarily offline, try again later."),
    10: (401, "Suspended API key: Access to your account has been suspended, contact TMDB."),
    11: (500, "Internal error: Something went wrong, contact TMDB."),
    20: (422, "Invalid date range: Should be a range no longer than 14 days."),
    # 21 and 40 come with HTTP 200, as TMDB documents them: a client must read `success`, not the status.
    21: (200, "Entry not found: The item you are trying to edit cannot be found."),
    22: (400, "Invalid page: Pages start at 1 and max at 500. They are expected to be an integer."),
    23: (400, "Invalid date: Format needs to be YYYY-MM-DD."),
    24: (504, "Your request to the backend server timed out. Try again."),
    27: (400, "Too many append to response objects: The maximum number of remote calls is 20."),
    34: (404, "The resource you requested could not be found."),
    40: (200, "Nothing to update."),
    42: (405, "This request method is not supported for this resource."),
    43: (502, "Couldn't connect to the backend server."),
    46: (503, "The API is undergoing maintenance. Try again later."),
}


def error_body(code: int, message: str | None = None) -> bytes:
    """TMDB's error body for a status_code (message defaults to TMDB's text for it)."""
    text = ERRORS[code][1] if message is None else message
    return orjson.dumps({"success": False, "status_code": code, "status_message": text})


def rate_limit_body(count: int, limit: float) -> bytes:
    """TMDB's 429 body (status_code 25): the message reports the request count in the window."""
    return error_body(25, f"Your request count ({count}) is over the allowed limit of {limit:g}.")
