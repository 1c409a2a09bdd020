"""Generic data handling: loading (Hub or local files), row checks, windows over long texts, samplers, and the
base data module that every task's data module extends."""
