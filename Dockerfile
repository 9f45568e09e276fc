# syntax=docker/dockerfile:1
# Production image: API (`pane serve`) by default; run the worker with `pane worker`.
# Point PANE_DATABASE_URL (as pane_app), PANE_MIGRATION_DATABASE_URL (owner) and
# PANE_REDIS_URL at real servers; run `pane migrate` once per release.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/pane
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN /opt/pane/bin/pip install .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/pane/bin:$PATH PYTHONUNBUFFERED=1 PANE_HOST=0.0.0.0 PANE_DATA_DIR=/var/lib/pane
RUN useradd --system --uid 10001 --home-dir /var/lib/pane --create-home pane
COPY --from=build /opt/pane /opt/pane
USER pane
WORKDIR /var/lib/pane
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["pane", "serve", "--workers", "2"]
