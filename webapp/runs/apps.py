from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "webapp.runs"
    label = "runs"
    verbose_name = "Runs (search and retraining)"

    def ready(self):
        from . import signals  # noqa: F401  (worker_ready: re-queue orphaned runs)

        _shorten_channel_layer_blocking_pop()


def _shorten_channel_layer_blocking_pop() -> None:
    """channels-redis waits for messages with a 5 s blocking pop, and redis-py 8 gives up reading
    after its default 5 s socket timeout: a WebSocket with no traffic for 5 s then dies with
    "Timeout reading" (close code 1011). A run page waits much longer than that between events,
    so the pop is kept well under the socket timeout. (The better fix is a ``socket_timeout``
    above 5 s in the CHANNEL_LAYERS hosts entry; then this does nothing.)"""
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # another channel layer
        return
    if RedisChannelLayer.brpop_timeout >= 5:
        RedisChannelLayer.brpop_timeout = 2
