"""Steps of a forced git sync: clone, fetch, resolve, back up, reset, clean and purge bytecode."""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import tarfile
from dataclasses import dataclass, field
from typing import Any

# C locale so that git's messages can be parsed; no prompt for a password over HTTPS.
GIT_BASE_ENV = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C", "GIT_TERMINAL_PROMPT": "0"}
BACKUP_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
MASK = "********"


class GitError(Exception):
    """A failed git step, with the output of the command that failed."""

    def __init__(self, message: str, rc: int | None = None, stdout: str = "", stderr: str = ""):
        super().__init__(message)
        self.message = message
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def fail_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"msg": self.message}
        if self.rc is not None:
            kwargs.update(rc=self.rc, stdout=self.stdout, stderr=self.stderr)
        return kwargs


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    userinfo = match.group("userinfo")
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{scheme}{user}:{MASK}@"
    if scheme.lower().startswith(("http", "ftp")):
        # A lone user name over HTTP(S) is usually an access token.
        return f"{scheme}{MASK}@"
    return match.group(0)


def mask_credentials(text: str) -> str:
    """Replace passwords and tokens embedded in URLs with asterisks."""
    return URL_USERINFO.sub(_mask_userinfo, text)


def url_secrets(url: str) -> list[str]:
    """Return the passwords and tokens embedded in a repository URL."""
    secrets = []
    for match in URL_USERINFO.finditer(url):
        masked = _mask_userinfo(match)
        if masked == match.group(0):
            continue
        userinfo = match.group("userinfo")
        secrets.append(userinfo.split(":", 1)[1] if ":" in userinfo else userinfo)
    return [secret for secret in secrets if secret]


def ssh_command(key_file: str | None, known_hosts_file: str | None) -> str:
    """Build GIT_SSH_COMMAND: never prompt, use only the deploy key, check the host key."""
    parts = ["ssh", "-o", "BatchMode=yes"]
    if key_file:
        parts += ["-i", key_file, "-o", "IdentitiesOnly=yes"]
    if known_hosts_file:
        parts += [
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts_file}",
        ]
    return shlex.join(parts)


def normalize_relative(path: str, option: str) -> str:
    """Return a path relative to the checkout without ./ or a trailing slash."""
    cleaned = os.path.normpath(path.strip())
    if os.path.isabs(cleaned) or cleaned == ".." or cleaned.startswith("../"):
        raise GitError(
            f"Unable to use {option} entry {path!r}: it must be a path relative to dest "
            "that stays inside the checkout, such as 'bots/echo/data'"
        )
    if cleaned == ".":
        raise GitError(
            f"Unable to use {option} entry {path!r}: it names the whole checkout; "
            "name a folder or file inside it"
        )
    return cleaned


def exclude_pattern(relative_path: str) -> str:
    """Turn a path into a gitignore pattern that matches only that path, from the top."""
    escaped = re.sub(r"([\\*?\[\]!# ])", r"\\\1", relative_path)
    return f"/{escaped}"


def is_under(relative_path: str, roots: list[str]) -> bool:
    return any(relative_path == root or relative_path.startswith(f"{root}/") for root in roots)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class SyncRequest:
    """Options of one git_sync call, with keep and purge_exclude already normalized."""

    dest: str
    repo: str
    version: str
    backup_root: str
    backup_keep: int
    purge_bytecode: bool
    keep: list[str] = field(default_factory=list)
    purge_exclude: list[str] = field(default_factory=list)


class Git:
    """Runs git in one checkout through AnsibleModule.run_command, masking credentials."""

    def __init__(self, module: Any, git_path: str, dest: str, env: dict[str, str]):
        self.module = module
        self.git_path = git_path
        self.dest = dest
        self.env = env

    def run(
        self,
        args: list[str],
        action: str,
        cwd: str | None = None,
        check: bool = True,
        mask: bool = True,
    ) -> tuple[int, str, str]:
        """Run git; with mask=False the output keeps credentials and must not be returned."""
        rc, stdout, stderr = self.module.run_command(
            [self.git_path, *args],
            cwd=cwd or self.dest,
            environ_update=self.env,
        )
        if mask:
            stdout = mask_credentials(stdout)
            stderr = mask_credentials(stderr)
        if check and rc != 0:
            cause = stderr.strip() or stdout.strip() or f"git exited with rc {rc}"
            raise GitError(f"Unable to {mask_credentials(action)}: {cause}", rc, stdout, stderr)
        return rc, stdout, stderr

    def output(self, args: list[str], action: str) -> str:
        return self.run(args, action)[1]


def checkout_state(dest: str) -> str:
    """Return 'missing', 'empty', 'checkout' or 'other' for the dest folder."""
    if not os.path.lexists(dest):
        return "missing"
    if not os.path.isdir(dest):
        return "other"
    if not os.listdir(dest):
        return "empty"
    if os.path.exists(os.path.join(dest, ".git")):
        return "checkout"
    return "other"


def clone(git: Git, repo: str, dest: str) -> None:
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    git.run(
        ["clone", "--no-checkout", "--origin", "origin", "--", repo, dest],
        f"clone {repo} into {dest}",
        cwd=parent,
    )


def sync_remote_url(git: Git, repo: str, check_mode: bool) -> bool:
    """Point origin at repo; return True when it pointed elsewhere."""
    rc, stdout, _ = git.run(
        ["config", "--get", "remote.origin.url"], "read origin", check=False, mask=False
    )
    if rc == 0 and stdout.strip() == repo:
        return False
    if not check_mode:
        verb = "set-url" if rc == 0 else "add"
        git.run(["remote", verb, "origin", repo], f"set the origin of {git.dest} to {repo}")
    return True


def fetch(git: Git, repo: str) -> None:
    git.run(["fetch", "--prune", "--tags", "--force", "origin"], f"fetch {repo}")


def _rev_parse(git: Git, name: str) -> str | None:
    rc, stdout, _ = git.run(
        ["rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], f"resolve {name}", check=False
    )
    return stdout.strip() if rc == 0 and stdout.strip() else None


def resolve_local(git: Git, version: str) -> str | None:
    """Resolve a branch of origin, a tag, or a commit, in that order."""
    for candidate in (f"refs/remotes/origin/{version}", f"refs/tags/{version}", version):
        sha = _rev_parse(git, candidate)
        if sha:
            return sha
    return None


def resolve_after_fetch(git: Git, repo: str, version: str) -> str:
    sha = resolve_local(git, version)
    if sha is None and FULL_SHA.match(version):
        # A commit that no branch or tag contains is fetched by its sha; servers may refuse.
        git.run(["fetch", "origin", version], f"fetch revision {version} from {repo}", check=False)
        sha = resolve_local(git, version)
    if sha is None:
        raise GitError(
            f"Unable to find revision {version!r} in {mask_credentials(repo)}: "
            "no branch, tag or commit of that name exists after fetching; "
            "check the version option and that the revision is pushed"
        )
    return sha


def resolve_remote(git: Git, remote: str, version: str, cwd: str | None) -> str | None:
    """Resolve version with ls-remote, which changes nothing; used in check mode."""
    _, stdout, _ = git.run(
        ["ls-remote", "--", remote, version, f"{version}^{{}}"],
        f"list the refs of {remote}",
        cwd=cwd,
    )
    refs: dict[str, str] = {}
    for line in stdout.splitlines():
        sha, _, ref = line.partition("\t")
        refs[ref] = sha
    for name in (f"refs/heads/{version}", f"refs/tags/{version}^{{}}", f"refs/tags/{version}"):
        if name in refs:
            return refs[name]
    return refs.get(version)


def head_sha(git: Git) -> str | None:
    return _rev_parse(git, "HEAD")


def _split_nul(text: str) -> list[str]:
    return [entry for entry in text.split("\0") if entry]


def tracked_changes(git: Git) -> list[dict[str, str]]:
    """List tracked files whose content differs from HEAD, staged or not."""
    entries = _split_nul(
        git.output(
            ["status", "--porcelain=v1", "-z", "--untracked-files=no", "--ignore-submodules=none"],
            f"read the status of {git.dest}",
        )
    )
    changes = []
    index = 0
    while index < len(entries):
        entry = entries[index]
        staged, worktree, path = entry[0], entry[1], entry[3:]
        if staged in "RC":
            # Renames and copies are followed by their source path.
            index += 1
        kind = "staged" if staged not in " ?" else "modified"
        if worktree != " " or staged != " ":
            changes.append({"path": path, "kind": kind})
        index += 1
    return changes


def untracked_files(git: Git, keep: list[str]) -> list[str]:
    """List the files that `git clean -fd` with the keep excludes would delete."""
    args = ["ls-files", "--others", "--exclude-standard", "-z"]
    args += [f"--exclude={exclude_pattern(path)}" for path in keep]
    entries = _split_nul(git.output(args, f"list untracked files in {git.dest}"))
    # A trailing slash marks a nested repository, which `git clean -fd` leaves alone.
    return sorted(entry for entry in entries if not entry.endswith("/"))


def clean_args(keep: list[str], dry_run: bool) -> list[str]:
    args = ["clean", "-n" if dry_run else "-f", "-d"]
    for path in keep:
        args += ["-e", exclude_pattern(path)]
    return args


def clean_pending(git: Git, keep: list[str]) -> bool:
    """Return True when `git clean` would remove anything, empty folders included."""
    return bool(git.output(clean_args(keep, True), f"list what git clean removes in {git.dest}"))


def tracked_bytecode(git: Git) -> set[str]:
    """List bytecode files that the revision itself contains, which the purge must spare."""
    output = git.output(
        ["ls-files", "-z", "--", "*.pyc", "*.pyo"], f"list tracked files in {git.dest}"
    )
    return set(_split_nul(output))


def find_bytecode(dest: str, spared: list[str], tracked: set[str]) -> list[str]:
    """List __pycache__ folders and .pyc/.pyo files in the checkout, outside spared paths."""
    tracked_dirs = {os.path.dirname(path) for path in tracked}
    found = []
    for root, dirnames, filenames in os.walk(dest):
        relative_root = os.path.relpath(root, dest)
        prefix = "" if relative_root == "." else f"{relative_root}/"
        kept_dirs = []
        for name in sorted(dirnames):
            relative = f"{prefix}{name}"
            if name == ".git" or is_under(relative, spared):
                continue
            if name == "__pycache__" and relative not in tracked_dirs:
                found.append(relative)
                continue
            kept_dirs.append(name)
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            relative = f"{prefix}{name}"
            if (
                name.endswith((".pyc", ".pyo"))
                and relative not in tracked
                and not is_under(relative, spared)
            ):
                found.append(relative)
    return found


def purge(dest: str, paths: list[str]) -> None:
    for relative in paths:
        path = os.path.join(dest, relative)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)


def _new_backup_dir(backup_root: str) -> str:
    os.makedirs(backup_root, mode=0o700, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    suffix = 0
    while True:
        name = stamp if suffix == 0 else f"{stamp}-{suffix}"
        path = os.path.join(backup_root, name)
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            suffix += 1


def write_backup(
    git: Git,
    request: SyncRequest,
    before: str | None,
    after: str,
    discarded: list[dict[str, str]],
    untracked: list[str],
) -> str:
    """Save tracked edits as a patch and untracked files as a tarball, with a manifest."""
    backup = _new_backup_dir(request.backup_root)
    files: dict[str, str] = {}

    if any(entry["kind"] != "untracked" for entry in discarded):
        patch = git.output(["diff", "HEAD", "--binary"], f"save the edits in {git.dest}")
        with open(os.path.join(backup, "changes.patch"), "w", encoding="utf-8") as handle:
            handle.write(patch)
        files["changes.patch"] = f"git -C {shlex.quote(request.dest)} apply changes.patch"

    saved = []
    if untracked:
        with tarfile.open(os.path.join(backup, "untracked.tar.gz"), "w:gz") as tarball:
            for relative in untracked:
                try:
                    tarball.add(os.path.join(request.dest, relative), relative, recursive=False)
                except FileNotFoundError:
                    # The running bot may delete its own temporary files meanwhile.
                    continue
                saved.append(relative)
        files["untracked.tar.gz"] = f"tar -xzf untracked.tar.gz -C {shlex.quote(request.dest)}"

    manifest = {
        "created": utc_now().isoformat(timespec="seconds"),
        "dest": request.dest,
        "repo": mask_credentials(request.repo),
        "before": before,
        "after": after,
        "discarded": discarded,
        "untracked_saved": saved,
        "restore": files,
    }
    with open(os.path.join(backup, "manifest.json"), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    return backup


def prune_backups(backup_root: str, keep: int) -> list[str]:
    """Delete the oldest backup folders beyond keep; other folders are left alone."""
    names = sorted(
        name
        for name in os.listdir(backup_root)
        if BACKUP_NAME.match(name)
        and os.path.isfile(os.path.join(backup_root, name, "manifest.json"))
    )
    removed = names[: max(len(names) - keep, 0)]
    for name in removed:
        shutil.rmtree(os.path.join(backup_root, name))
    return removed


def reset_and_clean(git: Git, sha: str, keep: list[str]) -> None:
    git.run(["reset", "--quiet", "--hard", sha], f"reset {git.dest} to {sha}")
    git.run(clean_args(keep, False), f"remove untracked files from {git.dest}")


def diff_text(revision: str | None, discarded: list[dict[str, str]], purged: list[str]) -> str:
    lines = [f"revision: {revision or '(none)'}"]
    lines += [f"discard {entry['kind']}: {entry['path']}" for entry in discarded]
    lines += [f"purge bytecode: {path}" for path in purged]
    return "\n".join(lines) + "\n"


def sync(git: Git, request: SyncRequest, check_mode: bool) -> dict[str, Any]:
    """Bring dest to the requested revision, saving whatever is discarded on the way."""
    state = checkout_state(request.dest)
    if state == "other":
        raise GitError(
            f"Unable to sync {request.dest}: it exists and is not a git checkout; "
            "move it away or remove it, then deploy again"
        )
    repo = mask_credentials(request.repo)

    if state in ("missing", "empty"):
        if check_mode:
            after = request.version
            if not FULL_SHA.match(request.version):
                after = resolve_remote(git, request.repo, request.version, cwd="/")
            if after is None:
                raise GitError(
                    f"Unable to find revision {request.version!r} in {repo}: "
                    "no branch or tag of that name; check the version option"
                )
            return _result(None, after, None, [], [], changed=True, cloned=True)
        clone(git, request.repo, request.dest)
        fetch(git, request.repo)
        after = resolve_after_fetch(git, request.repo, request.version)
        reset_and_clean(git, after, request.keep)
        return _result(None, after, None, [], [], changed=True, cloned=True)

    url_changed = sync_remote_url(git, request.repo, check_mode)
    if check_mode:
        after = resolve_local(git, request.version) if SHORT_SHA.match(request.version) else None
        if after is None and FULL_SHA.match(request.version):
            # ls-remote lists refs only, so a commit not fetched yet is reported as given.
            after = request.version
        remote = request.repo if url_changed else "origin"
        after = after or resolve_remote(git, remote, request.version, cwd=None)
        if after is None:
            raise GitError(
                f"Unable to find revision {request.version!r} in {repo}: "
                "no branch, tag or commit of that name; check the version option"
            )
    else:
        fetch(git, request.repo)
        after = resolve_after_fetch(git, request.repo, request.version)

    before = head_sha(git)
    untracked = untracked_files(git, request.keep)
    discarded = tracked_changes(git) + [{"path": path, "kind": "untracked"} for path in untracked]
    pending_clean = clean_pending(git, request.keep)
    spared = request.keep + request.purge_exclude
    bytecode = []
    if request.purge_bytecode:
        bytecode = find_bytecode(request.dest, spared, tracked_bytecode(git))
    changed = bool(url_changed or before != after or discarded or pending_clean or bytecode)
    if check_mode or not changed:
        return _result(before, after, None, discarded, bytecode, changed=changed)

    backup = None
    if discarded:
        backup = write_backup(git, request, before, after, discarded, untracked)
        prune_backups(request.backup_root, request.backup_keep)
    reset_and_clean(git, after, request.keep)
    if request.purge_bytecode:
        bytecode = find_bytecode(request.dest, spared, tracked_bytecode(git))
        purge(request.dest, bytecode)
    return _result(before, after, backup, discarded, bytecode, changed=True)


def _result(
    before: str | None,
    after: str,
    backup: str | None,
    discarded: list[dict[str, str]],
    bytecode: list[str],
    changed: bool,
    cloned: bool = False,
) -> dict[str, Any]:
    return {
        "changed": changed,
        "before": before,
        "after": after,
        "cloned": cloned,
        "backup": backup,
        "discarded": discarded,
        "purged": len(bytecode),
        "diff": {
            "before": diff_text(before, discarded, bytecode),
            "after": diff_text(after, [], []),
        },
    }
