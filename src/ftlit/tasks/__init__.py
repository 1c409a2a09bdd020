"""One package per task: its pure functions, data module, contract, model module, metrics and pipeline."""
