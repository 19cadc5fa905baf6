#!/usr/bin/env bash
# Installs what grader needs on a Debian machine with Python 3.11: system packages (when
# run as root), then a virtual environment in .venv with the project and its test tools.
# Idempotent and quick when everything is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mapfile -t packages < <(grep -v '^\s*#' scripts/system-packages.txt | awk 'NF {print $1}')
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "grader: these Debian packages are missing: ${missing[*]}" >&2
        echo "grader: run 'sudo apt-get install ${missing[*]}' (or this script as root), then again." >&2
        exit 1
    fi
fi

# Debian's own interpreter: readable by the unprivileged uid the sandbox runs students as
# (a pyenv interpreter under a 0700 home directory is not).
python=/usr/bin/python3.11
[ -x "$python" ] || python="$(command -v python3.11 || true)"
if [ -z "$python" ]; then
    echo "grader: Python 3.11 not found; install the python3.11 package" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.grader-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing Python packages into .venv (torch CPU wheel, nbclient, weasyprint, …)"
    .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    # torch is pinned to 2.13.0 in pyproject.toml: a plain `torch` would pull a CUDA build.
    .venv/bin/pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import torch, nbclient, weasyprint, grader" \
        || { echo "grader: the Python install failed (see the pip output above)" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
