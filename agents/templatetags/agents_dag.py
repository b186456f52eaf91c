"""`{% load agents_dag %}{% task_dag task %}`: the subtask DAG of a task, as inline SVG."""

from django import template

from agents.selectors import subtask_dag
from tasks.models import Task

register = template.Library()


@register.inclusion_tag("agents/_dag.html")
def task_dag(task: Task) -> dict:
    return subtask_dag(task)
