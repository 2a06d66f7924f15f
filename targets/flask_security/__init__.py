"""A small patient portal built on Flask-Security's stock views and templates.

The application (``app.py``, ``config.py``, ``models.py``, ``seed.py``, ``gunicorn_conf.py``) runs
in its own virtualenv (``.venv-flask-security``, made by ``setup.sh`` from the pinned
``requirements.txt``); ``audit_target.py`` is the audit's target provider and runs in the
project's venv. Neither imports the other.
"""
