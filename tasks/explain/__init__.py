"""Per-row explanations of a trained model on its raw input columns (issue 19)."""

from tasks.explain.contributions import Explanation, explain, explanation_frame

__all__ = ["Explanation", "explain", "explanation_frame"]
