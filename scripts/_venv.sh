# Sourced by scripts/demo and scripts/test: make .venv and install requirements.txt into it.
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        # Debian ships venv separately from Python itself.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "Installing python3-venv (Debian packages venv separately)..."
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            "$PYTHON" -m venv .venv
        else
            echo "Cannot create a virtualenv: run 'sudo apt-get install python3-venv' and try again." >&2
            exit 1
        fi
    fi
fi
if [ ! -f .venv/.installed ] || [ requirements.txt -nt .venv/.installed ]; then
    echo "Installing requirements into .venv..."
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    touch .venv/.installed
fi
export PATH="$PWD/.venv/bin:$PATH"
