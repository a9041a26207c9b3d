"""Event type names of the engine's event stream (see docs/ENGINE-CONTRACTS.md)."""
from __future__ import annotations

RUN_STARTED = "run_started"    # phase, total_steps, device, amp, resumed_from_step, config
STEP = "step"                  # step, total_steps, phase, losses{}, lrs{}, memory_bytes, ...
ARCHITECTURE = "architecture"  # step, genotype (continuous, floats rounded)
VALIDATION = "validation"      # step, dice{class name: float|None}, mean_dice
CHECKPOINT = "checkpoint"      # step, path
FINISHED = "finished"          # genotype | bundle
CANCELLED = "cancelled"        # step, checkpoint
FAILED = "failed"              # reason

EVENT_TYPES: tuple[str, ...] = (RUN_STARTED, STEP, ARCHITECTURE, VALIDATION, CHECKPOINT,
                                FINISHED, CANCELLED, FAILED)
TERMINAL_TYPES: frozenset[str] = frozenset({FINISHED, CANCELLED, FAILED})
