# Copyright: botfleet.pm2 developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options and notes of the modules that run pm2 as the PM2 user."""

    DOCUMENTATION = r"""
options:
  user:
    description: User that owns the PM2 daemon.
    type: str
    default: bots
  pm2_home:
    description: PM2 home folder (E(PM2_HOME)) of O(user). Defaults to C(<home of user>/.pm2).
    type: path
  pm2_path:
    description:
      - Path of the pm2 executable. Defaults to C(pm2) found on E(PATH), else C(/usr/local/bin/pm2).
    type: path
  systemd_unit:
    description: Systemd unit that owns the daemon. Defaults to C(pm2-<user>).
    type: str
notes:
  - >-
    Run the task with C(become: true). As root the module switches to O(user) with C(runuser);
    as O(user) it runs pm2 directly. In both cases pm2 gets only E(HOME), E(PM2_HOME) and a
    E(PATH) made of the folders of node and pm2 plus C(/usr/bin:/bin), so nothing from the
    caller's environment ends up in the apps' environment.
"""
