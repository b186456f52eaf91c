"""The embedded default's channel layer: Channels' in-memory layer, swept less often.

`channels.layers.InMemoryChannelLayer` looks for expired messages and group memberships on
every `receive` and `group_send`, walking every channel and every member of every group. With a
board of 200 sockets (each in its project's group and its login session's group) one event makes
200 receives, each walking ~600 entries: most of the fan-out's time (docs/PERFORMANCE.md).
Messages expire after a minute and memberships after a day, so sweeping at most once a second
changes nothing a board can see; it only stops every receive from paying for it.
"""

import time

from channels.layers import InMemoryChannelLayer

SWEEP_EVERY = 1.0  # seconds


class SweptInMemoryChannelLayer(InMemoryChannelLayer):
    _swept_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_EVERY:
            self._swept_at = now
            super()._clean_expired()
