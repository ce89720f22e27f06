"""Evaluation metrics, one module per family (the evaluation stage combines them)."""
