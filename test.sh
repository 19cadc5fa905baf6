#!/usr/bin/env bash
# Second command of the README (and CI's): install what is missing, lint, type-check, test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/install.sh
.venv/bin/ruff check grader tests reference
.venv/bin/ruff format --check grader tests reference
.venv/bin/mypy grader
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
