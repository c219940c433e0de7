#!/usr/bin/env bash
# A starter entry point: writes its argument to out/message.txt.
set -euo pipefail
mkdir -p out
printf '%s\n' "$1" > out/message.txt
echo "wrote out/message.txt"
