"""Who may call the REST API, how much, and the audit log of what they started.

* **Tokens.** With `api_token_file` set, every request must carry `Authorization: Bearer
  <token>` with one of the file's tokens, or it gets 401. Tokens in
  `api_readonly_token_file` may read (GET, HEAD) but not change anything (403). A file
  holds one token per line, optionally named (`NAME TOKEN`: the name goes into the audit
  log; unnamed tokens are logged by a fingerprint). Tokens are compared in constant time
  (hmac.compare_digest), against every token, so the time taken tells nothing. With
  `metrics_without_token`, `GET /metrics` needs none (Prometheus scrapes without one by
  default).
* **Limits.** A body over `max_body_bytes` gets 413 before it is read. With
  `api_rate` set, each client address gets that many requests per second (bursts of
  `api_burst`); past it, 429 with `Retry-After`.
* **Audit.** `audit()` logs one line per probe, batch and monitor change: who, what, when,
  to the `ryu_probe.audit` logger.

No event loop here: `Access.check(method, path, headers, client, length, now)` returns
the caller's identity or an (status, message, headers) refusal; rest.py turns it into a
response.
"""
import datetime
import hashlib
import hmac
import logging
import math
from dataclasses import dataclass, field

AUDIT = logging.getLogger('ryu_probe.audit')
READ_METHODS = ('GET', 'HEAD')
OPEN_PATHS = ('/metrics',)      # open with metrics_without_token
# Clients remembered for the rate limit at most; the idlest are forgotten first.
MAX_CLIENTS = 10000


@dataclass(frozen=True)
class Token:
    secret: bytes
    name: str
    read_only: bool


def load_tokens(path: str, read_only: bool) -> list[Token]:
    """The tokens of a file: a line is `TOKEN` or `NAME TOKEN`; # comments, blanks skipped.
    A file with no token is an error (an empty file must not mean "no auth")."""
    tokens = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            fields = line.split('#', 1)[0].split()
            if not fields:
                continue
            if len(fields) > 2:
                raise ValueError('%s: a line is TOKEN or NAME TOKEN' % path)
            secret = fields[-1].encode()
            name = fields[0] if len(fields) == 2 else fingerprint(secret)
            tokens.append(Token(secret, name, read_only))
    if not tokens:
        raise ValueError('%s: no token in it' % path)
    return tokens


def fingerprint(secret: bytes) -> str:
    return 'token:' + hashlib.sha256(secret).hexdigest()[:12]


@dataclass
class Access:
    tokens: list[Token] = field(default_factory=list)   # none: no authentication
    metrics_open: bool = False
    max_body: int = 4 << 20
    rate: float = 0.0               # requests per second per client; 0: no limit
    burst: int = 20
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    @classmethod
    def from_settings(cls, settings) -> 'Access':
        tokens = []
        if settings.api_token_file:
            tokens += load_tokens(settings.api_token_file, read_only=False)
        if settings.api_readonly_token_file:
            if not settings.api_token_file:
                raise ValueError('api_readonly_token_file needs api_token_file too')
            tokens += load_tokens(settings.api_readonly_token_file, read_only=True)
        return cls(tokens, settings.metrics_without_token, settings.max_body_bytes,
                   settings.api_rate, settings.api_burst)

    def check(self, method: str, path: str, authorization: str | None, client: str,
              length: int | None, now: float) -> tuple[str, tuple | None]:
        """(who, None) if the request may go on, else (who, (status, message, headers))."""
        who = client
        wait = self._wait(client, now)     # first: guessing tokens is rate-limited too
        if wait:
            return who, (429, 'too many requests from %s (api_rate=%g/s): retry in %d s'
                         % (client, self.rate, wait), {'Retry-After': str(wait)})
        if self.tokens and not (self.metrics_open and path in OPEN_PATHS):
            token = self._token(authorization)
            if token is None:
                return who, (401, 'authorization: a valid "Bearer <token>" is required',
                             {'WWW-Authenticate': 'Bearer'})
            who = '%s@%s' % (token.name, client)
            if token.read_only and method not in READ_METHODS:
                return who, (403, 'authorization: this token may only read (GET)', {})
        if length is not None and length > self.max_body:
            return who, (413, 'body: larger than %d bytes (max_body_bytes)' % self.max_body,
                         {})
        return who, None

    def _token(self, authorization: str | None) -> Token | None:
        scheme, _, given = (authorization or '').partition(' ')
        given = given.strip().encode()
        found = None
        for token in self.tokens:       # every one, whatever matched: constant time
            if hmac.compare_digest(token.secret, given) and scheme.lower() == 'bearer':
                found = token
        return found

    def _wait(self, client: str, now: float) -> int:
        """0 if the client may make a request now (and it is counted), else the whole
        seconds until it may."""
        if not self.rate:
            return 0
        tokens, at = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0 if tokens >= 1 else math.ceil((1 - tokens) / self.rate)
        self._buckets[client] = (tokens - (wait == 0), now)    # newest last
        while len(self._buckets) > MAX_CLIENTS:
            del self._buckets[next(iter(self._buckets))]
        return wait


def audit(who: str, action: str, what: str) -> None:
    """One line of the audit log: when (UTC), who started or changed what. Ryu logs bare
    messages, so the time is in the message."""
    AUDIT.info('%s %s by %s: %s', datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='milliseconds'), action, who, what)
