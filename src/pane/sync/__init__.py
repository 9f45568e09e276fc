"""Background work on arq: the worker's settings, jobs and schedules."""
