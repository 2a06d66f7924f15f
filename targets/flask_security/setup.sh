#!/bin/sh
# Create (or bring up to date) the Flask-Security target's own virtualenv from the pinned
# requirements.txt. Idempotent: with the virtualenv already matching requirements.txt it does
# nothing. FLASK_SECURITY_VENV names another place (default: .venv-flask-security at the
# project's root); PYTHON the interpreter to create it with (default: python3).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${FLASK_SECURITY_VENV:-$root/.venv-flask-security}
python=${PYTHON:-python3}
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/gunicorn" ]; then
    exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$want" > "$stamp"
