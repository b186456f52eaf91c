"""Board cards rendered as HTML in Python, one f-string per card.

A Django template costs 0.6–0.9 ms per card (an include, a `{% url %}`, `timesince` and `date`
filters on each); a board of a few hundred cards spent most of its time there. Everything that
is the same for every card (the detail URL prefix, priority labels, move menus per state, "now")
is computed once per board in `CardRenderer`, and each card is one escaped f-string.
The markup is what `board.js` and the tests read: keep the class names and data attributes.
"""

from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tasks.board_selectors import Card
from tasks.models import Priority
from tasks.states import TaskState

_LABELS = {value: escape(label) for value, label in Priority.choices}
_UNITS = (
    (365 * 24 * 3600, "year"),
    (30 * 24 * 3600, "month"),
    (7 * 24 * 3600, "week"),
    (24 * 3600, "day"),
    (3600, "hour"),
    (60, "minute"),
)
_MOVE_SUMMARY = '<summary aria-label="Move task {pk} to another column">Move to…</summary>'


def _plural(n: int, unit: str) -> str:
    return f"{n}\xa0{unit}{'' if n == 1 else 's'}"


def age(since: datetime, now: datetime) -> str:
    """Like Django's `timesince` (two adjacent units at most), at a fraction of its cost."""
    seconds = max(0, int((now - since).total_seconds()))
    for i, (size, unit) in enumerate(_UNITS):
        count = seconds // size
        if count:
            text = _plural(count, unit)
            if i + 1 < len(_UNITS):
                next_size, next_unit = _UNITS[i + 1]
                rest = (seconds - count * size) // next_size
                if rest:
                    text += ", " + _plural(rest, next_unit)
            return text
    return _plural(0, "minute")


def sort_key(card: Card) -> str:
    # The board's ORDER BY as a string, so the JavaScript can place a refreshed card.
    return (
        f"{Priority.URGENT - card.priority}:{card.position + 10**9:012d}:"
        f"{card.created_at.timestamp():018.6f}:{card.pk:012d}"
    )


class CardRenderer:
    """Renders cards of one project for one user; build once per request."""

    def __init__(self, *, project_slug: str, move_targets: dict[str, list[tuple[str, str]]]):
        marker = 999_999_999
        url = reverse("board-task", args=[project_slug, marker])
        self._url_head, self._url_tail = url.split(str(marker))
        self._now = timezone.now()
        self._tz = timezone.get_current_timezone()
        self._menus = {
            state: "".join(
                f'<button type="button" class="move-to" data-to="{escape(to)}">'
                f"{escape(label)}</button>"
                for to, label in targets
            )
            for state, targets in move_targets.items()
        }

    def _stamp(self, moment: datetime) -> str:
        return moment.astimezone(self._tz).strftime("%Y-%m-%d %H:%M")

    def card(self, card: Card) -> str:
        pk = card.pk
        title = escape(card.title)
        agent = card.assigned_agent if card.assigned_agent_id else None
        agent_name = escape(agent.name) if agent else "-"
        parts = [
            f'<article class="card prio-{card.priority}" id="task-{pk}" data-task-id="{pk}" '
            f'data-state="{card.state}" data-sort="{sort_key(card)}" '
            f'data-priority="{card.priority}" data-agent="{agent_name}" '
            f'data-title="#{pk} {escape(card.title.lower())}" draggable="true" tabindex="0" '
            f'aria-label="Task {pk}: {title}">\n  <div class="card-top">\n    '
        ]
        if card.state == TaskState.APPROVED:
            parts.append(
                f'<input type="checkbox" class="select-task" value="{pk}" '
                f'aria-label="Select task {pk} for merge">'
            )
        parts.append(
            f'\n    <a class="card-title" href="{self._url_head}{pk}{self._url_tail}">'
            f'#{pk} {title}</a>\n  </div>\n  <div class="card-meta">\n'
            f'    <span class="priority p-{card.priority}">{_LABELS[card.priority]}</span>\n'
            f'    <span class="age" title="in this column since '
            f"{self._stamp(card.state_changed_at)}; created {self._stamp(card.created_at)}"
            f'">{age(card.state_changed_at, self._now)}</span>\n    '
        )
        if agent:
            status = escape(agent.status)
            parts.append(
                f'<span class="agent" data-agent-id="{agent.pk}">{agent_name} '
                f'<span class="agent-status s-{status}">{status}</span></span>'
            )
        parts.append('\n  </div>\n  <div class="badges">\n')
        if card.open_questions:
            parts.append('    <span class="badge needs-input">needs input</span>\n')
        if card.unseen_feedback:
            parts.append(
                '    <span class="badge feedback" title="feedback the agent has not read yet">'
                "feedback</span>\n"
            )
        if card.blocked:
            parts.append(
                '    <span class="badge blocked" title="depends on tasks not yet in staging or '
                'production">blocked</span>\n'
            )
        if card.subtasks_total:
            parts.append(
                '    <span class="badge subtasks" title="subtasks in staging or production">'
                f"{card.subtasks_done}/{card.subtasks_total} subtasks</span>\n"
            )
        if card.pr_url:
            number = f" #{card.pr_number}" if card.pr_number else ""
            parts.append(
                f'    <a class="badge link" href="{escape(card.pr_url)}" rel="noopener" '
                f'target="_blank">PR{number}</a>\n'
            )
        if card.preview_url:
            parts.append(
                f'    <a class="badge link" href="{escape(card.preview_url)}" rel="noopener" '
                'target="_blank">preview</a>\n'
            )
        if card.preview_status:
            parts.append(
                f'    <span class="badge deploy deploy-{card.preview_status}" '
                f'title="preview deployment">preview {card.preview_status}</span>\n'
            )
        parts.append("  </div>\n")
        menu = self._menus.get(card.state)
        if menu:
            parts.append(
                '  <details class="move-menu">\n    '
                + _MOVE_SUMMARY.format(pk=pk)
                + f'\n    <div class="move-options">{menu}</div>\n  </details>\n'
            )
        parts.append("</article>")
        return "".join(parts)

    def cards(self, cards: Any) -> str:
        return "\n".join(self.card(c) for c in cards)
