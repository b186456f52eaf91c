"""Every write to a task goes through here (STYLE: fat services, one place per concern).

- `transitions`: the state machine's one door (`task_transition`, `task_release_transition`)
  and the rules every move into a state passes (`move_checked`).
- `claims`: `task_claim_next` and lease renewal.
- `editing`: creating and editing tasks and their dependencies.
- `conversation`: progress, questions, feedback and requested changes.
- `validation`: the input checks they share.
"""

from tasks.services.claims import (
    task_claim_next,
    task_ids_held_by,
    task_release_expired_leases,
    task_renew_lease_for_agent,
)
from tasks.services.conversation import (
    feedback_add,
    feedback_take_unseen,
    question_answer,
    question_ask,
    task_log_progress,
    task_request_changes,
)
from tasks.services.editing import task_create, task_set_dependencies, task_update
from tasks.services.transitions import (
    RELEASE_PERMISSIONS,
    TRANSITION_PERMISSIONS,
    lock_task,
    move_checked,
    record_event,
    task_approve,
    task_data,
    task_release,
    task_release_transition,
    task_transition,
)
from tasks.services.validation import (
    SPEC_FIELDS,
    clean_labels,
    clean_priority,
    clean_spec,
    clean_text,
)

__all__ = [
    "RELEASE_PERMISSIONS",
    "SPEC_FIELDS",
    "TRANSITION_PERMISSIONS",
    "clean_labels",
    "clean_priority",
    "clean_spec",
    "clean_text",
    "feedback_add",
    "feedback_take_unseen",
    "lock_task",
    "move_checked",
    "question_answer",
    "question_ask",
    "record_event",
    "task_approve",
    "task_claim_next",
    "task_create",
    "task_data",
    "task_ids_held_by",
    "task_log_progress",
    "task_release",
    "task_release_expired_leases",
    "task_release_transition",
    "task_renew_lease_for_agent",
    "task_request_changes",
    "task_set_dependencies",
    "task_transition",
    "task_update",
]
