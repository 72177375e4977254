"""What /api/health reports: database, cache, broker, workers per queue, the generator's model."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from generation.selectors import engine_status

logger = logging.getLogger(__name__)

QUEUES = ("gpu", "labeling", "default")
WORKERS_CACHE_KEY = "imagineer:health:workers"
# A worker that answered within this many seconds counts as "seen recently"; asking the
# workers costs up to WORKER_REPLY_TIMEOUT, so answers are cached rather than asked per request.
WORKERS_CACHE_SECONDS = 15
WORKER_REPLY_TIMEOUT = 0.5


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"; the message says which
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)}


def _cache() -> dict[str, Any]:
    """The cache degrades to "no cache" when Redis is down (imagineer/cache.py); this asks it."""
    backend = str(settings.CACHES["default"]["BACKEND"]).rsplit(".", 1)[-1]
    ping = getattr(cache, "ping", None)
    if ping is None:  # a local-memory or database cache is up whenever this process is
        return {"ok": True, "backend": backend}
    try:
        ping()
        return {"ok": True, "backend": backend}
    except Exception as exc:  # redis raises several types for an unreachable server
        return {"ok": False, "backend": backend, "error": str(exc)}


def _broker() -> dict[str, Any]:
    from imagineer.celery import app

    transport = settings.CELERY_BROKER_URL.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": transport}
    except Exception as exc:  # kombu raises many types for an unreachable broker
        return {"ok": False, "transport": transport, "error": str(exc)}


def _workers(*, broker_ok: bool) -> dict[str, Any]:
    """Workers per queue, from a broadcast ping the workers answer (cached a few seconds)."""
    cached = cache.get(WORKERS_CACHE_KEY)
    if cached is not None:
        return cached
    names_by_queue: dict[str, list[str]] = {queue: [] for queue in QUEUES}
    supported = broker_ok and settings.CELERY_BROKER_URL.startswith(("redis", "rediss", "unix"))
    if supported:
        from imagineer.celery import app

        try:
            replies = app.control.inspect(timeout=WORKER_REPLY_TIMEOUT).active_queues() or {}
        except Exception:  # a broker error here is already reported under "broker"
            logger.warning("Could not ask the workers for their queues", exc_info=True)
            replies = {}
        for worker, queues in replies.items():
            for queue in queues or []:
                names_by_queue.setdefault(queue.get("name", "?"), []).append(worker)
    report: dict[str, Any] = {
        queue: {"ok": bool(workers), "workers": sorted(workers)} if supported else {"ok": None, "workers": []}
        for queue, workers in names_by_queue.items()
    }
    cache.set(WORKERS_CACHE_KEY, report, WORKERS_CACHE_SECONDS)
    return report


def _model() -> dict[str, Any]:
    status = engine_status()
    keys = ("model_id", "is_noise_model", "loaded", "device", "last_seen", "configured_model_error")
    return {key: status[key] for key in keys}


def health_report() -> dict[str, Any]:
    """``status`` is ``ok`` (all parts up), ``degraded`` (the app works, a queue has no worker)
    or ``down`` (the database, the cache or the broker is down; ``down`` names which)."""
    database = _database()
    cache_part = _cache()
    broker = _broker()
    workers = _workers(broker_ok=broker["ok"])
    model = _model() if database["ok"] else {}
    down = [
        name for name, part in (("database", database), ("cache", cache_part), ("broker", broker)) if not part["ok"]
    ]
    if down:
        status = "down"
    elif any(queue["ok"] is False for queue in workers.values()):
        status = "degraded"
    else:
        status = "ok"
    return {
        "status": status,
        "down": down,
        "database": database,
        "cache": cache_part,
        "broker": broker,
        "workers": workers,
        "model": model,
        "device": model.get("device") or None,
    }
