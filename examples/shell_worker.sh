#!/usr/bin/env bash
# A shell job reporting progress over HTTP: TIDINGS_API_KEY, and --url or TIDINGS_HOST/PORT.
set -euo pipefail
job=${1:?usage: shell_worker.sh JOB_ID}

tidings emit "$job" initializing_streaming 5 --context filename=backup.tar
for percent in 20 40 60 80; do
  tidings emit "$job" extracting "$percent" --context filename=backup.tar
done
tidings emit "$job" complete --complete --context filename=backup.tar
