# syntax=docker/dockerfile:1

# The build stage makes a wheel of the service and installs it, with its
# dependencies, into a virtual environment; the runtime stage copies only that
# environment, so the image holds no sources, build tools or pip caches.
FROM python:3.12-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/signal-admin \
    && /opt/signal-admin/bin/python -m pip install --upgrade pip

WORKDIR /build
# .dockerignore lets in only pyproject.toml, README.md and src/.
COPY . .
RUN /opt/signal-admin/bin/python -m pip wheel --no-deps --wheel-dir /build/dist . \
    && /opt/signal-admin/bin/python -m pip install /build/dist/*.whl


FROM python:3.12-slim AS runtime

# HOST: listen on every interface inside the container.
# The working directory holds the SQLite file and generated secrets when the
# container runs in embedded mode; production sets DATABASE_URL and the keys.
ENV PATH=/opt/signal-admin/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8084

RUN groupadd --system --gid 10001 signal \
    && useradd --system --uid 10001 --gid signal --no-create-home \
        --home-dir /var/lib/signal-admin --shell /usr/sbin/nologin signal \
    && install --directory --owner signal --group signal --mode 0750 \
        /var/lib/signal-admin

COPY --from=builder /opt/signal-admin /opt/signal-admin

WORKDIR /var/lib/signal-admin
USER 10001:10001
EXPOSE 8084

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8084'), timeout=2)"

# Run `signal-admin migrate` once per release before starting replicas (the
# compose file does so in its own service); `serve` refuses an old schema.
CMD ["signal-admin", "serve"]
