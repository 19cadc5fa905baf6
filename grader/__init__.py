"""grader: an automated grader and feedback-report generator for deep-learning homework."""

__version__ = "0.1.0"
__all__ = ["__version__"]
