# syntax=docker/dockerfile:1
# breaking-alerts: `docker build -t breaking-alerts .`, then `docker run --env-file .env breaking-alerts`
# (alerts run: the whole service, with a private Redis unless REDIS_URL names one), or see
# docker-compose.yml for Redis and one container per worker.

# Build: the versions CI tested (hash-checked lock), then the project, into a venv.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /src/requirements.lock
RUN python -m venv /venv \
 && /venv/bin/pip install --require-hashes -r /src/requirements.lock
COPY pyproject.toml README.md /src/
COPY alerts /src/alerts
COPY workers /src/workers
RUN /venv/bin/pip install --no-deps /src

# Run: the venv alone (no compilers, no sources), as a user without privileges.
FROM python:3.12-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin alerts
COPY --from=build /venv /venv
COPY config /config
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ALERTS_CONFIG=/config \
    ALERTS_STATE_DIR=/home/alerts/state \
    ALERTS_METRICS_LISTEN=0.0.0.0:9464
USER alerts
WORKDIR /home/alerts
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=3).status != 200)"
ENTRYPOINT ["alerts"]
CMD ["run"]
