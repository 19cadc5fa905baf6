#!/usr/bin/env bash
# First command of the README: install everything, then grade the sample HW3 submissions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/install.sh
.venv/bin/grade submissions/hw3 --rubric hw3 --out graded/hw3
