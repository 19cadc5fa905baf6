"""Tools for assignment authors: ``grade new`` (a skeleton to edit) and ``grade assign``
(the student version and its public self-check)."""
