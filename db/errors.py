"""Which database and Redis errors mean "try again later" (503 with Retry-After) rather than
"the request is wrong" or "we have a bug" (500).

Told apart by where the failure happened, not by the exception's name (a connection that
dies can surface as almost any driver exception, depending on the moment):

- connecting: any exception while a connection is acquired or opened means the database
  is out of reach (db.pool.connection, and db.engine's do_connect for SQLAlchemy);
- a lost connection: a statement that fails and leaves its connection closed (db.pool, and
  SQLAlchemy's disconnect detection through db.engine's handle_error);

both become DatabaseUnavailable. Besides those, the server's own "not now" answers on a
healthy connection (their SQLSTATEs below), a wait that ran out (TimeoutError, a full
SQLAlchemy pool) and Redis not answering are 503 too. Anything else, a constraint violation
on a healthy connection say, is a bug: 500.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs that mean "the database cannot do it now": connection exceptions (08),
# insufficient resources (53), operator intervention (57P: shutdown, starting up), and the
# transient ones a retry fixes: serialization failure and deadlock (40), lock not available
# (55P03, our lock_timeout), statement cancelled (57014, a statement or lock timeout).
_UNREACHABLE_SQLSTATES = ("08", "53", "57P")
_TRANSIENT_SQLSTATES = (*_UNREACHABLE_SQLSTATES, "40", "55P03", "57014")

CONNECTING = "no connection to the database could be had"
LOST = "the connection to the database was lost"


class DatabaseUnavailable(Exception):
    """Connecting to the database failed, or the connection was lost while in use. Raised
    `from` the driver's exception; its own message never carries data."""


def try_again_later(exc: BaseException) -> bool:
    """Whether an error means the database (or Redis) is out of reach or busy now."""
    if isinstance(exc, DatabaseUnavailable | RedisConnectionError | RedisTimeoutError):
        return True
    # An acquire or statement timeout (asyncio's TimeoutError), or SQLAlchemy's full pool.
    if isinstance(exc, TimeoutError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # The server's answer, raised by the plain pool or wrapped by SQLAlchemy: look down the
    # chain for its SQLSTATE.
    seen: BaseException | None = exc
    for _depth in range(5):
        if seen is None:
            break
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def out_of_reach(exc: BaseException) -> bool:
    """Whether the database cannot be reached at all (retrying row by row would not help)."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES)
