"""The Celery app for the command line: `celery -A worker.celery_app worker|inspect|flower`.

This is the one place that builds settings at import time, because Celery's command line needs a
module-level app. The web app never imports this module; it builds its own with `create_celery`.
"""

from config import Settings
from worker.celery_setup import create_celery

app = create_celery(Settings())
