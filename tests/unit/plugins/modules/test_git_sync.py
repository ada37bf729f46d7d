"""Tests of botfleet.pm2.git_sync against real git repositories in temporary folders."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from module_runner import run_module_main

from ansible_collections.botfleet.pm2.plugins.module_utils._git import (
    exclude_pattern,
    mask_credentials,
)
from ansible_collections.botfleet.pm2.plugins.modules import git_sync

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return completed.stdout.strip()


def run_module(args: dict[str, Any], **flags: bool) -> dict:
    return run_module_main(git_sync, args, **flags)


class Upstream:
    """A bare repository with two commits on main and the tag v1 on the first."""

    def __init__(self, root: Path):
        self.bare = root / "upstream.git"
        work = root / "work"
        work.mkdir()
        git(work, "init", "--quiet", "--initial-branch=main")
        (work / ".gitignore").write_text("__pycache__/\n*.pyc\nnode_modules/\n*.log\n")
        (work / "bots" / "echo").mkdir(parents=True)
        (work / "bots" / "echo" / "app.py").write_text("print('v1')\n")
        (work / "bots" / "echo" / "config.json").write_text('{"prefix": "!"}\n')
        git(work, "add", ".")
        git(work, "commit", "--quiet", "-m", "First")
        git(work, "tag", "-a", "v1", "-m", "First release")
        self.first = git(work, "rev-parse", "HEAD")
        (work / "bots" / "echo" / "app.py").write_text("print('v2')\n")
        git(work, "commit", "--quiet", "-am", "Second")
        self.second = git(work, "rev-parse", "HEAD")
        git(root, "clone", "--quiet", "--bare", str(work), str(self.bare))


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return Upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def args(upstream: Upstream, tmp_path: Path) -> dict[str, Any]:
    return {
        "dest": str(tmp_path / "checkout"),
        "repo": str(upstream.bare),
        "version": "main",
        "backup_root": str(tmp_path / "backups"),
        "keep": ["bots/echo/data", "bots/echo/node_modules"],
    }


@pytest.fixture
def checkout(args: dict[str, Any]) -> Path:
    run_module(args)
    return Path(args["dest"])


def test_clone_into_missing_dest(args, upstream):
    result = run_module(args)
    assert result["changed"] is True
    assert result["cloned"] is True
    assert result["before"] is None
    assert result["after"] == upstream.second
    assert (Path(args["dest"]) / "bots/echo/app.py").read_text() == "print('v2')\n"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("main", "second"),
        ("v1", "first"),
        ("first-short", "first"),
        ("first-full", "first"),
    ],
)
def test_version_resolves_to_sha(args, upstream, checkout, version, expected):
    shas = {
        "main": "main",
        "v1": "v1",
        "first-short": upstream.first[:10],
        "first-full": upstream.first,
    }
    result = run_module({**args, "version": shas[version]})
    assert result["after"] == getattr(upstream, expected)
    assert git(checkout, "rev-parse", "HEAD") == getattr(upstream, expected)


def test_unknown_version_fails_naming_it(args, upstream, checkout):
    result = run_module({**args, "version": "no-such-branch"})
    assert result["failed"] is True
    assert result["msg"] == (
        f"Unable to find revision 'no-such-branch' in {upstream.bare}: no branch, tag or "
        "commit of that name exists after fetching; check the version option and that the "
        "revision is pushed"
    )


def test_local_edit_saved_then_discarded(args, upstream, checkout):
    config = checkout / "bots/echo/config.json"
    config.write_text('{"prefix": "?"}\n')
    app = checkout / "bots/echo/app.py"
    app.write_text("print('hotfix')\n")
    git(checkout, "add", "bots/echo/app.py")

    result = run_module(args)
    backup = Path(result["backup"])
    patch = (backup / "changes.patch").read_text()
    manifest = json.loads((backup / "manifest.json").read_text())
    assert result["changed"] is True
    assert result["discarded"] == [
        {"path": "bots/echo/app.py", "kind": "staged"},
        {"path": "bots/echo/config.json", "kind": "modified"},
    ]
    assert '+{"prefix": "?"}' in patch
    assert "+print('hotfix')" in patch
    assert manifest["discarded"] == result["discarded"]
    assert manifest["before"] == upstream.second
    assert config.read_text() == '{"prefix": "!"}\n'
    assert app.read_text() == "print('v2')\n"


def test_backup_patch_applies_again(args, checkout):
    (checkout / "bots/echo/config.json").write_text('{"prefix": "?"}\n')
    result = run_module(args)
    git(checkout, "apply", str(Path(result["backup"]) / "changes.patch"))
    assert (checkout / "bots/echo/config.json").read_text() == '{"prefix": "?"}\n'


def test_untracked_in_keep_path_survives(args, checkout):
    data = checkout / "bots/echo/data"
    data.mkdir()
    content = bytes(range(256)) * 64
    (data / "state.db").write_bytes(content)
    modules = checkout / "bots/echo/node_modules/left-pad"
    modules.mkdir(parents=True)
    (modules / "index.js").write_text("module.exports = 1;\n")

    result = run_module(args)
    assert result["discarded"] == []
    assert result["backup"] is None
    assert (data / "state.db").read_bytes() == content
    assert (modules / "index.js").exists()


def test_untracked_elsewhere_backed_up_removed(args, checkout):
    notes = checkout / "bots/echo/notes.txt"
    notes.write_bytes(b"remember\x00the milk\n")
    (checkout / "scratch").mkdir()
    (checkout / "scratch/todo.md").write_text("- deploy\n")
    (checkout / "bots/echo/run.log").write_text("ignored by .gitignore\n")

    result = run_module(args)
    with tarfile.open(Path(result["backup"]) / "untracked.tar.gz") as tarball:
        saved = tarball.extractfile("bots/echo/notes.txt").read()
        names = sorted(tarball.getnames())
    assert result["discarded"] == [
        {"path": "bots/echo/notes.txt", "kind": "untracked"},
        {"path": "scratch/todo.md", "kind": "untracked"},
    ]
    assert names == ["bots/echo/notes.txt", "scratch/todo.md"]
    assert saved == b"remember\x00the milk\n"
    assert not notes.exists()
    assert not (checkout / "scratch").exists()
    assert (checkout / "bots/echo/run.log").exists()


def test_stray_bytecode_purged(args, checkout):
    cache = checkout / "bots/echo/__pycache__"
    cache.mkdir()
    (cache / "removed_module.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (checkout / "bots/echo/old.pyc").write_bytes(b"\x00bytecode")
    spared = checkout / "bots/echo/data/__pycache__"
    spared.mkdir(parents=True)
    (spared / "kept.cpython-311.pyc").write_bytes(b"\x00bytecode")

    result = run_module(args)
    assert result["changed"] is True
    assert result["purged"] == 2
    assert result["backup"] is None
    assert not cache.exists()
    assert not (checkout / "bots/echo/old.pyc").exists()
    assert (spared / "kept.cpython-311.pyc").exists()


def test_purge_exclude_spares_folder(args, checkout):
    vendored = checkout / "bots/echo/vendor"
    vendored.mkdir()
    (vendored / "lib.pyc").write_bytes(b"\x00bytecode")
    result = run_module({**args, "purge_exclude": ["bots/echo/vendor/lib.pyc"]})
    assert result["purged"] == 0
    assert (vendored / "lib.pyc").exists()


def test_second_run_changes_nothing(args, checkout):
    result = run_module(args)
    assert result["changed"] is False
    assert result["before"] == result["after"]
    assert result["discarded"] == []
    assert result["purged"] == 0


def test_move_between_revisions_reports_both(args, upstream, checkout):
    result = run_module({**args, "version": "v1"}, diff=True)
    assert result["changed"] is True
    assert result["before"] == upstream.second
    assert result["after"] == upstream.first
    assert result["diff"]["before"] == f"revision: {upstream.second}\n"
    assert result["diff"]["after"] == f"revision: {upstream.first}\n"


def test_check_mode_touches_nothing(args, upstream, checkout):
    (checkout / "bots/echo/config.json").write_text("edited\n")
    (checkout / "notes.txt").write_text("mine\n")
    (checkout / "stale.pyc").write_bytes(b"\x00")

    result = run_module({**args, "version": "v1"}, check=True, diff=True)
    assert result["changed"] is True
    assert result["after"] == upstream.first
    assert result["discarded"] == [
        {"path": "bots/echo/config.json", "kind": "modified"},
        {"path": "notes.txt", "kind": "untracked"},
    ]
    assert result["purged"] == 1
    assert result["diff"]["before"] == (
        f"revision: {upstream.second}\n"
        "discard modified: bots/echo/config.json\n"
        "discard untracked: notes.txt\n"
        "purge bytecode: stale.pyc\n"
    )
    assert git(checkout, "rev-parse", "HEAD") == upstream.second
    assert (checkout / "bots/echo/config.json").read_text() == "edited\n"
    assert (checkout / "notes.txt").exists()
    assert (checkout / "stale.pyc").exists()
    assert not Path(args["backup_root"]).exists()


def test_check_mode_on_missing_dest(args, upstream):
    result = run_module(args, check=True)
    assert result["changed"] is True
    assert result["after"] == upstream.second
    assert not Path(args["dest"]).exists()


def test_old_backups_pruned(args, checkout):
    backup_root = Path(args["backup_root"])
    backup_root.mkdir()
    for name in ("20240101T000000Z", "20240102T000000Z", "20240103T000000Z"):
        (backup_root / name).mkdir()
        (backup_root / name / "manifest.json").write_text("{}\n")
    (backup_root / "keep-me").mkdir()
    (checkout / "notes.txt").write_text("mine\n")

    result = run_module({**args, "backup_keep": 2})
    assert sorted(os.listdir(backup_root)) == [
        "20240103T000000Z",
        os.path.basename(result["backup"]),
        "keep-me",
    ]


def test_fetch_failure_masks_password(args, checkout):
    repo = "https://deployer:s3cret-token@127.0.0.1:9/bots.git"
    captured = run_module({**args, "repo": repo})
    output = json.dumps(captured)
    assert captured["failed"] is True
    assert captured["msg"].startswith(
        "Unable to fetch https://deployer:********@127.0.0.1:9/bots.git: "
    )
    assert captured["rc"] == 128
    assert "s3cret-token" not in output


def test_dest_not_a_checkout_fails(args):
    Path(args["dest"]).mkdir()
    (Path(args["dest"]) / "file.txt").write_text("not git\n")
    result = run_module(args)
    assert result["msg"] == (
        f"Unable to sync {args['dest']}: it exists and is not a git checkout; "
        "move it away or remove it, then deploy again"
    )


def test_backup_root_inside_dest_rejected(args):
    result = run_module({**args, "backup_root": f"{args['dest']}/backups"})
    assert result["failed"] is True
    assert "inside dest" in result["msg"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:pw@host/r.git", "https://user:********@host/r.git"),
        ("https://ghp_token@host/r.git", "https://********@host/r.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("git@host:r.git", "git@host:r.git"),
    ],
)
def test_mask_credentials_cases(text, expected):
    assert mask_credentials(text) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("bots/echo/data", "/bots/echo/data"),
        ("node_modules", "/node_modules"),
        ("odd[1]*", "/odd\\[1\\]\\*"),
    ],
)
def test_exclude_pattern_is_anchored(path, expected):
    assert exclude_pattern(path) == expected


def test_new_token_in_url_replaces_origin(args, checkout):
    git(checkout, "remote", "set-url", "origin", "https://deployer:old@127.0.0.1:9/bots.git")
    result = run_module(args)
    assert result["changed"] is True
    assert git(checkout, "config", "--get", "remote.origin.url") == args["repo"]


def test_check_mode_unfetched_sha_as_given(args, upstream, checkout):
    unfetched = "ab" * 20
    result = run_module({**args, "version": unfetched}, check=True)
    assert "failed" not in result
    assert result["after"] == unfetched
    assert result["before"] == upstream.second
    assert result["changed"] is True
    assert git(checkout, "rev-parse", "HEAD") == upstream.second
