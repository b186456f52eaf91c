"""The board's columns and cards rendered as HTML in Python, one f-string each.

A Django template costs 0.6–0.9 ms per card (an include, a `{% url %}`, `timesince` and `date`
filters on each); a board of a few hundred cards spent most of its time there. The columns are
rendered here too: as a template they cost 1.5 ms, mostly copying the cards' HTML again at every
loop, include and block.
Everything that is the same for every card (the detail URL prefix, priority labels, move menus
per state, "now") is computed once per board in `CardRenderer`, and each card is one f-string.
Escaping uses the standard library's `html.escape`: Django's `escape` is that same call wrapped
for lazy strings and safe-string marking, which costs four times as much and buys nothing here.
The markup is ASCII (`&nbsp;`, `&hellip;`, not the characters): Python turns an ASCII page into
UTF-8 bytes with one copy, but any other character makes every join and the final encode work
character by character (0.5 ms for a board of 400 cards).
The markup is what `board.js` and the tests read: keep the class names and data attributes.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any

from django.urls import reverse
from django.utils import timezone

from aiworker.safe_urls import http_url
from deployments.models import step_label
from tasks.board_selectors import (
    Card,
    OpenQuestion,
    ReleaseProgress,
    open_questions,
    release_progress,
)
from tasks.models import Priority, labels_of
from tasks.states import TaskState

_LABELS = {value: escape(label) for value, label in Priority.choices}
_APPROVED = TaskState.APPROVED.value
# The cards a release moves: approved -> staging -> production (and back on a rollback).
_RELEASED = frozenset({TaskState.APPROVED.value, TaskState.STAGING.value})
_URGENT = Priority.URGENT.value
QUESTION_SHOWN = 300  # characters of an open question on its card; the task page has it all
_UNITS = (
    (365 * 24 * 3600, "year"),
    (30 * 24 * 3600, "month"),
    (7 * 24 * 3600, "week"),
    (24 * 3600, "day"),
    (3600, "hour"),
    (60, "minute"),
)
# The button in a column's header, for people who may use it.
_COLUMN_ACTIONS = {
    TaskState.APPROVED.value: (
        '<button type="button" class="small merge-to-staging" '
        'title="Merge the ticked approved tasks to staging">Merge to staging</button>'
    ),
    TaskState.STAGING.value: (
        '<button type="button" class="small promote" '
        'title="Promote the latest staging release to production">Promote</button>'
    ),
}


def _plural(n: int, unit: str) -> str:
    return f"{n}&nbsp;{unit}{'' if n == 1 else 's'}"


def age(since: datetime, now: datetime) -> str:
    """Django's `timesince` as HTML (two adjacent units at most), at a fraction of its cost."""
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
        f"{_URGENT - card.priority}:{card.position + 10**9:012d}:"
        f"{card.created_at.timestamp():018.6f}:{card.pk:012d}"
    )


class CardRenderer:
    """Renders a project's columns and cards for one user; build once per request."""

    def __init__(
        self,
        *,
        project_slug: str,
        move_targets: dict[str, list[tuple[str, str]]],
        may_answer: bool = False,
    ):
        self._may_answer = may_answer
        self._questions: dict[int, OpenQuestion] = {}
        self._releases: dict[int, ReleaseProgress] = {}
        self._releases_read: set[int] = set()
        marker = 999_999_999
        url = reverse("board-task", args=[project_slug, marker])
        self._url_head, self._url_tail = url.split(str(marker))
        self._now = timezone.now()
        zone = timezone.get_current_timezone()
        # Rows come back in datetime.UTC; `astimezone` skips the conversion only for
        # that same object, so a UTC zone (the default) is replaced by it: 0.3 ms a board.
        self._tz = UTC if str(zone) == "UTC" else zone
        self._menus = {
            state: "".join(
                f'<button type="button" class="move-to" data-to="{escape(to)}">'
                f"{escape(label)}</button>"
                for to, label in targets
            )
            for state, targets in move_targets.items()
        }

    def _stamp(self, moment: datetime) -> str:
        # "YYYY-MM-DD HH:MM" in the current time zone; isoformat is twice as fast as strftime.
        return moment.astimezone(self._tz).isoformat(" ", "minutes")[:16]

    def card(self, card: Card) -> str:
        """A lone card (a live refresh): its open question and release are read here."""
        self.load_questions([card])
        return self._card(card, self._questions.get(card.pk))

    def _card(self, card: Card, question: OpenQuestion | None) -> str:
        pk = card.pk
        title = escape(card.title)
        agent_name = escape(card.agent_name or "-")
        parts = [
            f'<article class="card prio-{card.priority}" id="task-{pk}" data-task-id="{pk}" '
            f'data-state="{card.state}" data-sort="{sort_key(card)}" '
            f'data-priority="{card.priority}" data-agent="{agent_name}" '
            f'data-labels="{escape(card.labels)}" '
            # Escaping only adds lowercase entities, so this is the escaped lowercase title.
            f'data-title="#{pk} {title.lower()}" draggable="true" tabindex="0" '
            f'aria-label="Task {pk}: {title}">\n  <div class="card-top">\n    ',
            (
                f'<input type="checkbox" class="select-task" value="{pk}" '
                f'aria-label="Select task {pk} for merge">'
                if card.state == _APPROVED
                else ""
            ),
            f'\n    <a class="card-title" href="{self._url_head}{pk}{self._url_tail}">'
            f'#{pk} {title}</a>\n  </div>\n  <div class="card-meta">\n'
            f'    <span class="priority p-{card.priority}">{_LABELS[card.priority]}</span>\n'
            f'    <span class="age" title="in this column since '
            f"{self._stamp(card.state_changed_at)}; created {self._stamp(card.created_at)}"
            f'">{age(card.state_changed_at, self._now)}</span>\n    ',
            "".join(
                f'<span class="label-chip">{escape(label)}</span>'
                for label in labels_of(card.labels)
            ),
        ]
        if card.assigned_agent_id:
            status = escape(card.agent_status or "")
            parts.append(
                f'<span class="agent" data-agent-id="{card.assigned_agent_id}">{agent_name} '
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
        pr_url, preview = http_url(card.pr_url), http_url(card.preview_url)  # never javascript:
        if pr_url:
            number = f" #{card.pr_number}" if card.pr_number else ""
            parts.append(
                f'    <a class="badge link" href="{escape(pr_url)}" rel="noopener" '
                f'target="_blank">PR{number}</a>\n'
            )
        if preview:
            parts.append(
                f'    <a class="badge link" href="{escape(preview)}" rel="noopener" '
                'target="_blank">preview</a>\n'
            )
        if card.preview_status:
            why = card.preview_error if card.preview_status == "failed" else ""
            title = escape(f"preview failed: {why}") if why else "preview deployment"
            parts.append(
                f'    <span class="badge deploy deploy-{card.preview_status}" '
                f'title="{title}">preview {step_label(card.preview_status)}</span>\n'
            )
        release = self._releases.get(pk)
        if release is not None:
            why = escape(f"{release.environment} release failed: {release.error}")
            title = why if release.status == "failed" else f"{release.environment} release"
            parts.append(
                f'    <span class="badge deploy deploy-{release.status} release" '
                f'title="{title}">{release.environment} {step_label(release.status)}</span>\n'
            )
        parts.append("  </div>\n")
        if question is not None:
            parts.append(self._question(pk, question))
        menu = self._menus.get(card.state)
        if menu:
            parts.append(
                '  <details class="move-menu">\n    <summary aria-label="Move task '
                f'{pk} to another column">Move to&hellip;</summary>\n'
                f'    <div class="move-options">{menu}</div>\n  </details>\n</article>'
            )
        else:
            parts.append("</article>")
        return "".join(parts)

    def load_questions(self, cards: Iterable[Card]) -> None:
        """Read the open questions, and the unsettled releases, of every card the page shows:
        one query each."""
        cards = list(cards)
        missing = [c.pk for c in cards if c.open_questions and c.pk not in self._questions]
        if missing:
            self._questions.update(open_questions(missing))
        moving = [
            c.pk
            for c in cards
            if c.release_unsettled and c.state in _RELEASED and c.pk not in self._releases_read
        ]
        if moving:
            self._releases.update(release_progress(moving))
            self._releases_read.update(moving)

    def cards(self, cards: Any) -> str:
        cards = list(cards)
        self.load_questions(cards)
        questions = self._questions
        return "\n".join([self._card(c, questions.get(c.pk)) for c in cards])

    def _question(self, pk: int, question: OpenQuestion) -> str:
        """The question the agent waits on; for who may answer, its options as one-click
        buttons and a free-text field beside them (board.js posts the answer)."""
        text = question.question
        if len(text) > QUESTION_SHOWN:
            text = text[:QUESTION_SHOWN] + "..."
        html = (
            f'  <div class="card-question" data-question-id="{question.pk}">\n'
            f'    <p class="question-text">{escape(text)}</p>\n'
        )
        if self._may_answer:
            buttons = "".join(
                f'<button type="button" class="small answer-option" '
                f'data-answer="{escape(option)}">{escape(option)}</button>'
                for option in question.options
            )
            html += (
                f'    <div class="question-options">{buttons}</div>\n'
                '    <form class="answer-free">'
                f'<input type="text" name="answer" maxlength="2000" required '
                f'aria-label="Answer the question of task {pk}" placeholder="Answer&hellip;">'
                '<button type="submit" class="small">Send</button></form>\n'
            )
        return html + "  </div>\n"

    def column(
        self,
        *,
        state: str,
        label: str,
        cards: list[Card],
        count: int,
        limit: int | None,
        with_action: bool = False,
        matching: int | None = None,
    ) -> str:
        """A column: its header (exact count, WIP limit and flag, and with `with_action` the
        column's button), its first cards and "show more" for the rest. While the board is
        searched, `matching` says how many of the column's tasks match (the cards are those)."""
        shown = len(cards)
        hidden = (count if matching is None else matching) - shown
        over = limit is not None and count > limit
        full = limit is not None and count >= limit  # "3 / 3": the header's count turns red
        label = escape(label)
        action = _COLUMN_ACTIONS.get(state, "") if with_action else ""
        return (
            f'<section class="column st-{state}{" over-limit" if over else ""}'
            f'{" at-limit" if full else ""}" '
            f'data-state="{state}" data-limit="{"" if limit is None else limit}" '
            f'aria-label="{label}">\n'
            '  <header class="column-head">\n'
            f"    <h2>{label}</h2>\n"
            f'    <span class="count" title="tasks in this column">{count}</span>'
            + ("" if limit is None else f'<span class="limit" title="WIP limit"> / {limit}</span>')
            + (
                ""
                if matching is None
                else f'<span class="matches" data-count="{matching}" '
                f'title="tasks that match the search"> ({matching} match)</span>'
            )
            + f'\n    <span class="over-flag"{"" if over else " hidden"}>over WIP limit</span>\n'
            f"    {action}\n"
            "  </header>\n"
            f'  <div class="cards" data-state="{state}">\n{self.cards(cards)}\n  </div>\n'
            f'  <button type="button" class="small show-more" data-state="{state}" '
            f'data-shown="{shown}"{"" if hidden else " hidden"}>'
            f'Show more (<span class="more-count">{hidden}</span> not shown)</button>\n'
            "</section>"
        )

    def columns(self, columns: Iterable[str]) -> str:
        """What `#board-columns` holds: on the page, and what a board fetches to resync."""
        return '<div class="columns">\n' + "\n".join(columns) + "\n</div>\n"
