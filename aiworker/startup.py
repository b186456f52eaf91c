"""What a long-running server process does once its code is loaded."""

import gc


def freeze_loaded_objects() -> None:
    """Move everything loaded so far out of the garbage collector's way.

    Django and the libraries it imports leave ~190,000 objects that live as long as the
    process. Each full collection walked them all: a 250–280 ms pause, which landed in the
    middle of a broadcast to 200 boards about one event in 13 (docs/PERFORMANCE.md). Frozen,
    a full collection costs a few milliseconds.
    """
    gc.collect()
    gc.freeze()
