"""A Redis cache that degrades instead of failing when Redis is unreachable.

The cache holds counters and hints (sign-in rate limits, the health page's worker list), never
data that must not be lost. When Redis is down, reads miss, writes are dropped and a lock or
``add`` is granted, so sign-in and every page keep working; rate limits stop counting until
Redis is back. A warning is logged at most once a minute per process. ``/api/health`` asks
:meth:`DegradingRedisCache.ping`, which does raise, and reports the cache as down.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0

T = TypeVar("T")


def _degrade(fallback: Callable[..., Any]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """On an unreachable Redis, answer ``fallback(*args)`` instead of raising."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
            global _last_warning
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as exc:
                now = time.monotonic()
                if now - _last_warning >= WARN_EVERY_SECONDS:
                    _last_warning = now
                    logger.warning("Cache unreachable (%s); continuing without it", exc)
                return fallback(*args, **kwargs)

        return wrapper

    return decorate


class DegradingRedisCacheClient(RedisCacheClient):
    # ``add`` says "granted": allauth's rate-limit lock spins until ``add`` succeeds.
    add = _degrade(lambda key, value, timeout: True)(RedisCacheClient.add)
    get = _degrade(lambda key, default: default)(RedisCacheClient.get)
    set = _degrade(lambda key, value, timeout: None)(RedisCacheClient.set)
    touch = _degrade(lambda key, timeout: False)(RedisCacheClient.touch)
    delete = _degrade(lambda key: False)(RedisCacheClient.delete)
    get_many = _degrade(lambda keys: {})(RedisCacheClient.get_many)
    has_key = _degrade(lambda key: False)(RedisCacheClient.has_key)
    incr = _degrade(lambda key, delta: delta)(RedisCacheClient.incr)
    set_many = _degrade(lambda data, timeout: [])(RedisCacheClient.set_many)
    delete_many = _degrade(lambda keys: None)(RedisCacheClient.delete_many)
    clear = _degrade(lambda: False)(RedisCacheClient.clear)


class DegradingRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = DegradingRedisCacheClient

    def ping(self) -> None:
        """Raise when Redis cannot be reached (for /api/health); the other methods never do."""
        self._cache.get_client(write=True).ping()
