"""Event type names of the engine's event stream (see docs/ENGINE-CONTRACTS.md).

The core types below are closed; any other type must be namespaced by the method that emits
it, ``"<method>.<name>"`` (``NAMESPACED_TYPE``), e.g. ``scnas.sampled_ops``.
"""
from __future__ import annotations

import re

RUN_STARTED = "run_started"    # phase, total_steps, device, amp, resumed_from_step, stage, ...
STEP = "step"                  # step, total_steps, phase, stage, progress, losses{}, lrs{}, metrics{}
ARCHITECTURE = "architecture"  # step, genotype (continuous, floats rounded)
VALIDATION = "validation"      # step, dice{class name: float|None}, mean_dice
CHECKPOINT = "checkpoint"      # step, path, stage
FINISHED = "finished"          # genotype | bundle
CANCELLED = "cancelled"        # step, checkpoint
FAILED = "failed"              # reason

EVENT_TYPES: tuple[str, ...] = (RUN_STARTED, STEP, ARCHITECTURE, VALIDATION, CHECKPOINT,
                                FINISHED, CANCELLED, FAILED)
TERMINAL_TYPES: frozenset[str] = frozenset({FINISHED, CANCELLED, FAILED})

#: A method-specific event type: ``<method>.<name>``, both lower-case identifiers.
NAMESPACED_TYPE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def is_event_type(name: object) -> bool:
    """True for a core type or a namespaced ``<method>.<name>`` type."""
    return isinstance(name, str) and (name in EVENT_TYPES or
                                      NAMESPACED_TYPE.fullmatch(name) is not None)
