"""Whether the endpoint still answers a run: what tells one request's bad luck from an endpoint
that stopped answering.

botocore's timeouts bound each socket operation, not a request, and its retries repeat them: an
endpoint that accepts connections and never answers costs attempts * read_timeout, one that
drops SYNs attempts * connect_timeout. A shorter read timeout alone would also cut off a slow
endpoint that is working. The watch sees, on the run's client, every request start and every
attempt end, every answer (any HTTP response, errors included) and every block of an upload
the endpoint takes, and:

- once nothing at all has been heard from the endpoint for `patience` seconds while a
  request waits (counted from that request's start), it does not let botocore try that
  request again and raises EndpointSilent instead: waiting again would only make the run give
  up later. An upload that keeps going, however slowly, or an endpoint that answers other
  requests, never trips it;
- marks a request's network error with whether any request was answered while it waited
  (`answered_meanwhile`), and counts the answers, so that Failures.judge can tell one file's
  failure from an endpoint that answers nobody;
- takes an answer that asks to slow down (503 SlowDown, 429, a throttling code) as no
  failure at all while the endpoint still answers other requests: the request is tried
  again after a growing pause, up to THROTTLED_ATTEMPTS times (botocore alone gives up after
  AWS_S3_MAX_ATTEMPTS, counting them with every other error), and each one is counted
  (`throttled`), so that the run keeps fewer requests in flight
  (albums.sync.bucket.concurrency). An endpoint that has answered nothing but that for
  THROTTLED_PATIENCE seconds (a server down behind a proxy that says 503) gets botocore's
  few tries only, so that its files fail in seconds rather than minutes each.
"""

import random
import threading
import time

from botocore import exceptions as boto
from s3transfer.subscribers import BaseSubscriber

PATIENCE_SECONDS = 8
# An answer that says "slow down" is tried again this many times in all, after a pause that
# doubles from THROTTLED_PAUSE up to THROTTLED_PAUSE_MAX seconds (with jitter, so that the
# requests in flight do not come back together): about two minutes before a request that
# is refused every time fails.
THROTTLED_ATTEMPTS = 10
THROTTLED_PAUSE = 0.5
THROTTLED_PAUSE_MAX = 20.0
THROTTLED_PATIENCE = 60.0
# What S3 and S3-compatible services answer when a client goes too fast: botocore's own list
# of throttling codes (for its standard retry mode), S3's "503 ServiceUnavailable: reduce
# your request rate", any 429, and a 503 without a code (the answer to a HEAD has no body
# to name it). A server down behind a proxy that says 503 to everything is told apart by
# THROTTLED_PATIENCE: it answers nothing else.
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", "ServiceUnavailable",
})  # fmt: skip
THROTTLING_STATUSES = frozenset({429})
# A 503 whose answer has no body to name its code (the answer to a HEAD) is S3's SlowDown.
UNNAMED = frozenset({"", "503"})
_STARTED = "albums_request_started"  # in botocore's per-request context: (time, answers)


class EndpointSilent(boto.ConnectionError):
    """The endpoint answered nothing, to this request or any other, for `seconds`."""

    fmt = "No answer from the endpoint for {seconds:.0f} s, to this request or any other ({error})"


class EndpointWatch:
    """What one run's client has heard from the endpoint (see the module docstring)."""

    def __init__(self, *, patience: float = PATIENCE_SECONDS, clock=time.monotonic):
        self.patience = patience
        self._clock = clock
        self._lock = threading.Lock()
        self._heard_at = float("-inf")  # the last answer or upload block
        # The last answer that did not ask to slow down (at first, when the watch began).
        self._answered_at = clock()
        self.answers = 0  # HTTP responses, errors included
        self.throttled = 0  # answers that asked to slow down

    def attach(self, client) -> None:
        """Listen to `client` (a boto3 S3 client): every request's start, every attempt's end."""
        client.meta.events.register("before-call.s3", self._started)
        # First, before botocore's own retry handler decides to try again.
        client.meta.events.register_first("needs-retry.s3", self._attempted)

    def heard(self) -> None:
        """The endpoint took another block of an upload: it is working, if slowly."""
        with self._lock:
            self._heard_at = self._clock()

    def _started(self, context, **kwargs) -> None:
        with self._lock:
            context[_STARTED] = (self._clock(), self.answers)

    def _attempted(self, response, caught_exception, request_dict, attempts=1, **kwargs):
        now = self._clock()
        if response is not None:
            slow_down = is_throttling(response[0].status_code, response[1])
            with self._lock:
                self._heard_at = now
                self.answers += 1
                self.throttled += slow_down
                if not slow_down:
                    self._answered_at = now
                patient = now - self._answered_at < THROTTLED_PATIENCE
            if slow_down and patient and attempts < THROTTLED_ATTEMPTS:
                return throttled_pause(attempts)  # botocore sleeps this long, then tries again
            return None
        if not isinstance(caught_exception, boto.HTTPClientError | boto.ConnectionError):
            return  # not the network (a file that could not be read, say): not ours to judge
        if isinstance(caught_exception, boto.SSLError):
            return  # a TLS failure says what to fix; waiting is not the problem
        started, answers = request_dict.get("context", {}).get(_STARTED, (now, self.answers))
        with self._lock:
            silent = now - max(self._heard_at, started)
            caught_exception.answered_meanwhile = self.answers > answers
        if silent >= self.patience:
            raise EndpointSilent(seconds=silent, error=caught_exception) from caught_exception


def is_throttling(status: int | None, parsed: dict) -> bool:
    """Whether an answer (its HTTP status, botocore's parsed body) asks to slow down."""
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return (
        status in THROTTLING_STATUSES
        or code in THROTTLING_CODES
        or (status == 503 and code in UNNAMED)
    )


def throttled_pause(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th answer that asked to slow down."""
    ceiling = min(THROTTLED_PAUSE_MAX, THROTTLED_PAUSE * 2 ** (attempts - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def answered_meanwhile(exc: Exception) -> bool:
    """Whether the endpoint answered any request while the one that raised `exc` waited."""
    return getattr(exc, "answered_meanwhile", False)


class UploadHeard:
    """A file being uploaded, telling `watch` each time the HTTP layer reads the next block,
    which it does once the endpoint has taken the one before. Everything else is the file's."""

    def __init__(self, file, watch: EndpointWatch):
        self._file = file
        self._watch = watch

    def read(self, *args):
        data = self._file.read(*args)
        self._watch.heard()
        return data

    def __getattr__(self, name):
        return getattr(self._file, name)


class UploadProgress(BaseSubscriber):
    """The same for an upload in parts (s3transfer calls it as each part's body is read)."""

    def __init__(self, watch: EndpointWatch):
        self._watch = watch

    def on_progress(self, future, bytes_transferred, **kwargs):
        self._watch.heard()
