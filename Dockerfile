# iterloop: one image for the worker (`iterloop worker`, the default) and the API (`iterloop api`).
#
#   docker build -t iterloop:0.1.0 .
#   docker run --rm -e TEMPORAL_ADDRESS=temporal:7233 iterloop:0.1.0            # a worker
#   docker run --rm -p 8080:8080 -e ITERLOOP_API_TOKENS=… iterloop:0.1.0 api    # the API
#
# See docs/deploy.md for the whole stack (docker-compose.yml) and production notes.

FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The sources `pip install .` packages (pyproject.toml lists them); tests, docs and local state
# stay out (.dockerignore).
COPY pyproject.toml README.md ./
COPY dsl ./dsl
COPY workflows ./workflows
COPY activities ./activities
COPY runtime ./runtime
COPY skills ./skills
COPY api ./api
COPY cli.py worker.py ./
COPY examples ./examples
RUN pip install . \
    && useradd --create-home --uid 10001 --user-group iterloop \
    && mkdir -p /data/artifacts \
    && chown -R iterloop:iterloop /data

# Everything a worker writes (artifacts of large outputs, the notification delivery store) lives
# under /data: mount one volume there and share it between all workers and the API.
ENV ITERLOOP_HOME=/data \
    ITERLOOP_ARTIFACT_DIR=/data/artifacts \
    ITERLOOP_NOTIFY_STORE=/data/notify.sqlite3 \
    ITERLOOP_WORKFLOWS_DIR=/app/examples

USER iterloop:iterloop
VOLUME ["/data"]
EXPOSE 8080 9464

ENTRYPOINT ["iterloop"]
CMD ["worker"]
