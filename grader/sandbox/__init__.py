"""Running student notebooks: the notebook runner and, later, process isolation."""
