"""The shared cache on Redis, which CIM can do without for a while: when Redis is unreachable a read is a miss,
a write is skipped and a counter starts again at its first step (rate limits let visitors through rather than
turning them away), so pages, forms and event ingestion keep working through a Redis outage."""

import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def _degraded(operation: str, fallback):
    def wrapped(self, *args, **kwargs):
        try:
            return getattr(super(ResilientRedisClient, self), operation)(*args, **kwargs)
        except RedisError as error:
            logger.warning("Redis unreachable, cache %s skipped: %s", operation, type(error).__name__)
            return fallback(*args, **kwargs)

    return wrapped


class ResilientRedisClient(RedisCacheClient):
    add = _degraded("add", lambda key, value, timeout: False)
    get = _degraded("get", lambda key, default: default)
    set = _degraded("set", lambda key, value, timeout: None)
    touch = _degraded("touch", lambda key, timeout: False)
    delete = _degraded("delete", lambda key: False)
    get_many = _degraded("get_many", lambda keys: {})
    has_key = _degraded("has_key", lambda key: False)
    incr = _degraded("incr", lambda key, delta: delta)
    set_many = _degraded("set_many", lambda data, timeout: [])
    delete_many = _degraded("delete_many", lambda keys: None)
    clear = _degraded("clear", lambda: None)


class ResilientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ResilientRedisClient
