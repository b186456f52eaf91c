"""Board forms: shape checks only. The services validate the content and may still refuse."""

from django import forms
from django.conf import settings

from aiworker import errors
from projects.models import PullRequestComment
from tasks.models import Priority, labels_of
from tasks.services import clean_labels


class TaskForm(forms.Form):
    title = forms.CharField(max_length=settings.TASK_TITLE_MAX)
    description = forms.CharField(
        required=False,
        max_length=settings.TEXT_FIELD_MAX,
        widget=forms.Textarea(attrs={"rows": 8}),
    )
    priority = forms.TypedChoiceField(choices=Priority.choices, coerce=int, initial=Priority.MEDIUM)
    labels = forms.CharField(
        required=False,
        max_length=400,
        help_text="Comma-separated, e.g. bug, ui. The board filters by them.",
    )


class AnswerForm(forms.Form):
    answer = forms.CharField(
        max_length=settings.TEXT_FIELD_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )


class FeedbackForm(forms.Form):
    feedback = forms.CharField(
        max_length=settings.TEXT_FIELD_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What to change. The agent reads it with get_feedback.",
    )


class NoteForm(forms.Form):
    note = forms.CharField(
        required=False, max_length=settings.TEXT_FIELD_MAX, widget=forms.TextInput()
    )


class ReviewForm(forms.Form):
    """A comment or a request for changes on a task's local pull request."""

    body = forms.CharField(
        max_length=settings.TEXT_FIELD_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The agent reads it with get_feedback.",
    )
    verdict = forms.ChoiceField(
        choices=[
            (PullRequestComment.Kind.COMMENT, "Comment"),
            (PullRequestComment.Kind.CHANGES_REQUESTED, "Request changes"),
        ],
        initial=PullRequestComment.Kind.COMMENT,
    )


class BoardFilterForm(forms.Form):
    """The board's search, as its filters send it (`?q=&agent=&priority=&label=`)."""

    q = forms.CharField(required=False, max_length=settings.TASK_TITLE_MAX, strip=True)
    agent = forms.CharField(required=False, max_length=100)
    priority = forms.TypedChoiceField(
        required=False, choices=[("", "Any"), *Priority.choices], coerce=int, empty_value=None
    )
    label = forms.CharField(required=False, max_length=100)

    def clean_label(self) -> str:
        try:
            found = labels_of(clean_labels([self.cleaned_data["label"]]))
        except errors.InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None
        return found[0] if found else ""
