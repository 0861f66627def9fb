#!/bin/sh
# Wait for the database, migrate when asked (the web service asks), then run the command.
set -e
if [ "${MIGRATE_ON_START:-false}" = "true" ]; then
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    python manage.py migrate --noinput && break
    echo "database not ready (attempt $attempt); retrying in 3 s" >&2
    sleep 3
  done
fi
exec "$@"
