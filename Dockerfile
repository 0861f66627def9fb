# The image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STUDIO_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
COPY requirements.txt /app/requirements.txt
COPY clients/python /app/clients/python
RUN pip install --no-cache-dir -r requirements.txt

COPY manage.py /app/manage.py
COPY studio /app/studio
COPY apps /app/apps
COPY templates /app/templates
COPY static /app/static
COPY docker/entrypoint.sh /app/docker/entrypoint.sh

# collectstatic needs settings but no database; a throwaway key is enough at build time.
RUN DEBUG=false SECRET_KEY=build-only-key-build-only-key-build-only-key python manage.py collectstatic --noinput \
    && useradd --create-home --uid 1000 studio && mkdir -p /data && chown studio /data

USER studio
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "studio.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
