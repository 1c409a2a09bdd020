"""What every task's training shares: the base module, optimizer and schedule, evaluation, checkpoints, resuming,
callbacks and outputs."""
