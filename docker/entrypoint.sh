#!/bin/sh
# Container entry point. Without a SECRET_KEY in the environment, use one generated on the
# first start and kept in the data volume, so web, worker and beat share it and sessions
# survive restarts; nothing secret is baked into the image or the compose file.
set -eu
if [ -z "${SECRET_KEY:-}" ]; then
    key_file="${METERLOG_VAR_DIR:-/data}/secret_key"
    if [ ! -s "$key_file" ]; then
        umask 077
        python -c 'import secrets; print(secrets.token_urlsafe(50))' >"$key_file.tmp"
        mv -n "$key_file.tmp" "$key_file" 2>/dev/null || rm -f "$key_file.tmp"
    fi
    SECRET_KEY=$(cat "$key_file")
    export SECRET_KEY
fi
exec "$@"
