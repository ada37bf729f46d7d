#!/usr/bin/env bash
# The plain deploy script that the benchmark compares our deploy with: the
# steps users run over SSH today. It runs on the host as the bots user, with
# the folder of its bots as the only argument:
#   ssh root@host 'sudo -iu bots bash -s -- /srv/plain-2' < plain_deploy.sh
# That folder contains checkout/ (a clone of the bots repository), venvs/<bot>
# and a hand-written ecosystem.config.js.
set -euo pipefail

root="$1"
cd "$root/checkout"

git fetch --quiet origin
git reset --quiet --hard origin/main
git clean -fdq

for bot in bots/*/; do
  name="$(basename "$bot")"
  if [ -f "$bot/package.json" ]; then
    (cd "$bot" && npm install --no-audit --no-fund --loglevel=error)
  fi
  if [ -f "$bot/requirements.txt" ]; then
    venv="$root/venvs/$name"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$bot/requirements.txt"
  fi
done

find . -name __pycache__ -type d -prune -exec rm -rf {} +

# `pm2 delete all` fails when PM2 has no app yet, as on the first deploy.
pm2 delete all || true
pm2 start "$root/ecosystem.config.js"
pm2 save
pm2 list
