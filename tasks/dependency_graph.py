"""The task page's small dependency graph, laid out on the server as SVG coordinates: what the
task depends on in the left column, the task in the middle, what needs it on the right."""

from dataclasses import dataclass

from tasks.models import Task

NODE_W, NODE_H, GAP_X, GAP_Y = 170, 40, 50, 12
SHOWN = 8  # nodes per side; the lists beside the graph name them all


@dataclass(frozen=True)
class Node:
    task: Task
    x: int
    y: int
    current: bool = False


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Graph:
    width: int
    height: int
    nodes: list[Node]
    edges: list[Edge]
    node_w: int = NODE_W
    node_h: int = NODE_H


def dependency_graph(task: Task, depends_on: list[Task], dependents: list[Task]) -> Graph | None:
    """None when the task has no dependency either way (nothing to draw)."""
    if not depends_on and not dependents:
        return None
    left, right = depends_on[:SHOWN], dependents[:SHOWN]
    rows = max(len(left), len(right), 1)
    height = rows * (NODE_H + GAP_Y) - GAP_Y
    centre = Node(task, NODE_W + GAP_X, (height - NODE_H) // 2, current=True)

    def column(tasks: list[Task], x: int) -> list[Node]:
        top = (height - (len(tasks) * (NODE_H + GAP_Y) - GAP_Y)) // 2
        return [Node(t, x, top + i * (NODE_H + GAP_Y)) for i, t in enumerate(tasks)]

    before, after = column(left, 0), column(right, 2 * (NODE_W + GAP_X))
    mid = centre.y + NODE_H // 2
    edges = [Edge(n.x + NODE_W, n.y + NODE_H // 2, centre.x, mid) for n in before]
    edges += [Edge(centre.x + NODE_W, mid, n.x, n.y + NODE_H // 2) for n in after]
    width = 3 * NODE_W + 2 * GAP_X if after else 2 * NODE_W + GAP_X
    return Graph(width=width, height=height, nodes=[*before, centre, *after], edges=edges)
