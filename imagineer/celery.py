"""The Celery application.

Queues: ``gpu`` (generation and training; one worker process per GPU keeps the pipeline
resident), ``labeling`` (ephemeral labeling containers) and ``default`` (everything else).
Routes and options live in settings (``CELERY_*``).

    celery -A imagineer worker -Q gpu -c 1
    celery -A imagineer worker -Q labeling -c 2
    celery -A imagineer worker -Q default
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagineer.settings")

app = Celery("imagineer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("gpu"), Queue("labeling"), Queue("default"))
app.autodiscover_tasks()
