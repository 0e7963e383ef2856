# One tidings node. docker-compose.yml runs two of them behind nginx, sharing one Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY messages ./messages
COPY ingest ./ingest
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app tidings
USER tidings

EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["tidings", "serve", "--host", "0.0.0.0"]
