"""Which database and Redis errors mean "try again later" (503 with Retry-After) rather than
"the request is wrong" or "we have a bug" (500)."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs that mean "the database cannot do it now": connection exceptions (08),
# insufficient resources (53), operator intervention (57P: shutdown, starting up), invalid
# authorisation (28), a database that does not exist (3D000), and the transient ones a retry
# fixes: serialization failure and deadlock (40), lock not available (55P03, our
# lock_timeout), statement cancelled (57014, a statement or lock timeout).
_UNREACHABLE_SQLSTATES = ("08", "53", "57P", "28", "3D000")
_TRANSIENT_SQLSTATES = (*_UNREACHABLE_SQLSTATES, "40", "55P03", "57014")


def try_again_later(exc: BaseException) -> bool:
    """Whether an error means the database (or Redis) is out of reach or busy now."""
    if isinstance(exc, ConnectionError | OSError | RedisConnectionError | RedisTimeoutError):
        return True  # OSError includes TimeoutError (an acquire or statement timeout)
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # asyncpg's own exception, raised by the plain pool or wrapped by SQLAlchemy's adapter:
    # look down the chain.
    seen: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    for _depth in range(5):
        if seen is None:
            break
        if isinstance(seen, ConnectionError | OSError):
            return True
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def out_of_reach(exc: BaseException) -> bool:
    """Whether the database cannot be reached at all (retrying row by row would not help)."""
    if isinstance(exc, ConnectionError | OSError):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES)
