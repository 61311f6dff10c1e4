#!/bin/sh
# Container entry point of the SimpleBank image: `simplebank <service>` runs that service in the foreground
# (PID 1 via exec, so SIGTERM from `docker stop` reaches it and it drains gracefully).
set -eu
service="${1:-}"
if [ -z "$service" ] || [ ! -f "services/$service/src/main.ts" ]; then
  echo "usage: <image> <service>   (one of: $(ls services | tr '\n' ' '))" >&2
  exit 64
fi
exec node --enable-source-maps --import tsx "services/$service/src/main.ts"
