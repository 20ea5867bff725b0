"""The background side of Startup Reports: the Celery app and task, the job API the web app calls,
the research pipeline and the language-model providers it talks to.

Importing this package imports nothing else, so that the pipeline and the providers stay usable
without Celery.
"""
