"""Sample the status of every PM2 app about twice a second until a stop file appears.

Runs on the test host as the bots user: python3 sampler.py OUTPUT STOP_FILE. Each line of OUTPUT
is one JSON object: "t" (Unix time, midway through the `pm2 jlist` call) and "apps" (app name to
PM2 status, or null when `pm2 jlist` returned no readable list).
"""

import json
import os
import subprocess
import sys
import time

PERIOD_SECONDS = 0.5
PM2 = "/usr/local/bin/pm2"


def read_statuses() -> dict[str, str] | None:
    result = subprocess.run([PM2, "jlist"], capture_output=True, text=True, check=False)
    # PM2 can print notices before the JSON list, so only the last line that starts one is read.
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    if result.returncode != 0 or not lines:
        return None
    try:
        processes = json.loads(lines[-1])
    except ValueError:
        return None
    return {process["name"]: process["pm2_env"]["status"] for process in processes}


def main() -> None:
    output, stop_file = sys.argv[1], sys.argv[2]
    with open(output, "w", encoding="utf-8") as samples:
        while not os.path.exists(stop_file):
            started = time.time()
            statuses = read_statuses()
            finished = time.time()
            samples.write(json.dumps({"t": (started + finished) / 2, "apps": statuses}) + "\n")
            samples.flush()
            time.sleep(max(0.0, PERIOD_SECONDS - (time.time() - started)))


if __name__ == "__main__":
    main()
