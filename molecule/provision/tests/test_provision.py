"""Checks of a host provisioned by playbooks/provision.yml."""

import json

import pytest

USER = "bots"
HOME = f"/home/{USER}"
PM2_HOME = f"{HOME}/.pm2"
UNIT = f"pm2-{USER}.service"
PM2_ENV = f"sudo -u {USER} env HOME={HOME} PM2_HOME={PM2_HOME} PATH=/usr/local/bin:/usr/bin:/bin"


def os_major(host) -> int:
    return int(host.system_info.release.split(".")[0])


def test_node_version(host):
    version = host.check_output("node --version").lstrip("v")
    expected_major = {12: 18, 13: 20}[os_major(host)]
    assert int(version.split(".")[0]) == expected_major


def test_npm_config_trusts_system_bundle(host):
    globalconfig = host.check_output("npm config get globalconfig")
    npmrc = host.file(globalconfig)
    assert npmrc.exists
    assert "cafile=/etc/ssl/certs/ca-certificates.crt" in npmrc.content_string


def test_extra_ca_certificate_trusted(host):
    cert = host.file("/usr/local/share/ca-certificates/botfleet-test-controller.crt")
    assert cert.exists
    assert cert.mode == 0o644
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    first_pem = cert.content_string.split("-----END CERTIFICATE-----")[0]
    assert first_pem.split("-----BEGIN CERTIFICATE-----")[1].strip() in bundle


def test_python_venv_with_pip(host, tmp_path_factory):
    venv = "/tmp/botfleet-venv-check"
    host.run(f"rm -rf {venv}")
    host.check_output(f"python3 -m venv {venv}")
    pip_version = host.run(f"{venv}/bin/pip --version")
    host.run(f"rm -rf {venv}")
    assert pip_version.rc == 0


def test_pip_config_trusts_system_bundle(host):
    pip_conf = host.file("/etc/pip.conf")
    assert pip_conf.exists
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in pip_conf.content_string


def test_system_python_has_no_pip_packages(host):
    result = host.run("python3 -m pip --version")
    assert result.rc != 0


def test_pm2_version_pinned(host):
    assert host.check_output(f"{PM2_ENV} pm2 --version") == "7.0.4"


def test_pm2_user(host):
    user = host.user(USER)
    assert user.exists
    assert user.home == HOME
    assert user.uid != 0
    assert user.group == USER


def test_pm2_home_private(host):
    pm2_home = host.file(PM2_HOME)
    assert pm2_home.is_directory
    assert pm2_home.user == USER
    assert pm2_home.mode == 0o700


def test_pm2_unit_enabled_active(host):
    service = host.service(UNIT)
    if not service.is_running:
        print(host.run(f"journalctl -u {UNIT} --no-pager -n 50").stdout)
    assert service.is_enabled
    assert service.is_running


def test_pm2_unit_uses_user_home(host):
    unit = host.file(f"/etc/systemd/system/{UNIT}").content_string
    assert f"User={USER}" in unit
    assert f"Environment=PM2_HOME={PM2_HOME}" in unit
    assert "/root/.pm2" not in unit


def test_pm2_daemon_owned_by_unit(host):
    main_pid = host.check_output(f"systemctl show -p MainPID --value {UNIT}")
    pid_file = host.file(f"{PM2_HOME}/pm2.pid").content_string.strip()
    assert main_pid == pid_file
    assert main_pid != "0"


def test_no_root_pm2_daemon(host):
    processes = host.check_output("ps -eo user=,args=").splitlines()
    daemons = [line.split(None, 1) for line in processes if " God Daemon " in line]
    assert daemons
    assert all(user == USER for user, _args in daemons)
    assert not host.file("/root/.pm2/pm2.pid").exists


def test_pm2_ping_as_user(host):
    assert "pong" in host.check_output(f"{PM2_ENV} pm2 ping")


def test_saved_app_online(host):
    apps = json.loads(host.check_output(f"{PM2_ENV} pm2 jlist"))
    statuses = {app["name"]: app["pm2_env"]["status"] for app in apps}
    assert statuses.get("sample-app") == "online"


def test_logrotate_config(host):
    config = host.file(f"/etc/logrotate.d/pm2-{USER}")
    assert config.exists
    assert config.mode == 0o644
    assert "copytruncate" in config.content_string
    assert f"{PM2_HOME}/logs/*.log" in config.content_string
    assert host.run(f"logrotate --debug /etc/logrotate.d/pm2-{USER}").rc == 0


def test_logrotate_timer_enabled(host):
    assert host.service("logrotate.timer").is_enabled


@pytest.mark.parametrize("key", ["node_path", "npm_path", "pm2_path", "python_path"])
def test_local_fact_paths_absolute(host, key):
    fact = json.loads(host.file("/etc/ansible/facts.d/botfleet.fact").content_string)
    assert fact[key].startswith("/")
    assert host.file(fact[key]).exists


def test_acl_installed(host):
    assert host.package("acl").is_installed
