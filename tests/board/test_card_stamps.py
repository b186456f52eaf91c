"""A card's "in this column since …; created …" is in the current time zone, whether that is UTC
(the rows' own zone, where no conversion is needed) or another one."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from tasks.board_render import CardRenderer
from tasks.board_selectors import Card


def _card() -> Card:
    moved = datetime(2026, 1, 15, 23, 30, tzinfo=UTC)
    created = datetime(2026, 1, 10, 8, 5, tzinfo=UTC)
    return Card(
        *(1, "t", "backlog", 1, "", 0, "", None, "", created, moved, None, None, None),
        *(False, False, 0, 0, False, None, None, False),
    )


@pytest.mark.parametrize(
    ("zone", "stamps"),
    [
        ("UTC", "since 2026-01-15 23:30; created 2026-01-10 08:05"),
        ("Europe/Berlin", "since 2026-01-16 00:30; created 2026-01-10 09:05"),
    ],
)
def test_stamps_are_in_the_current_time_zone(zone, stamps):
    with timezone.override(zone):
        renderer = CardRenderer(project_slug="p", move_targets={})
        html = renderer.cards([_card()])
    assert f'title="in this column {stamps}"' in html
