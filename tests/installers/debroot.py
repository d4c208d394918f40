"""A fresh minimal Debian root (debootstrap --variant=minbase: no Python in it) to install the .deb into.

debootstrap runs once per machine and is kept as a tarball (``TANDEM_DEBROOT_CACHE``, default
/var/tmp/tandem-debroot); each test module unpacks a fresh copy. Downloaded .debs are cached
beside it, so a second run fetches nothing. Needs root (chroot, mount) and the Debian mirror.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

MIRROR = os.environ.get("TANDEM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("TANDEM_DEBROOT_CACHE", "/var/tmp/tandem-debroot"))
CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}


def codename() -> str:
    """This machine's Debian release: the package is built here, so it must install there."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    raise RuntimeError("/etc/os-release names no VERSION_CODENAME: not a Debian machine")


def why_not_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount)"
    for tool in ("debootstrap", "dpkg-deb", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/system-packages installer)"
    return None


def base_tarball() -> Path:
    name = codename()
    tarball = CACHE / f"{name}-minbase.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f"{name}-bootstrap"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", name, str(work), MIRROR],
        check=True,
        capture_output=True,
    )
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(work), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)  # only a complete tarball is ever reused
    shutil.rmtree(work, ignore_errors=True)
    return tarball


def _mounted_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if (p + "/").startswith(prefix)]


class DebRoot:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run(
        self,
        cmd: Sequence[str],
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["chroot", *([f"--userspec={user}:{user}"] if user else []), str(self.root)]
        full_env = {**CHROOT_ENV, **(env or {})}
        if user:
            full_env.setdefault("HOME", f"/home/{user}")
        result = subprocess.run(
            [*argv, "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} in the Debian root exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def popen(
        self, cmd: Sequence[str], *, user: str, env: dict[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        full_env = {**CHROOT_ENV, "HOME": f"/home/{user}", **env}
        with open(log, "wb") as out:
            return subprocess.Popen(
                [
                    "chroot",
                    f"--userspec={user}:{user}",
                    str(self.root),
                    "/usr/bin/env",
                    "-i",
                    *(f"{k}={v}" for k, v in full_env.items()),
                    *cmd,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def bind(self, host_dir: Path, inside: str) -> None:
        """The host's ``host_dir`` at ``inside`` (unmounted with the root)."""
        target = self.path(inside)
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(host_dir), str(target)], check=True)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def dpkg_clean(self) -> str:
        """'' when dpkg knows of no half-installed, half-configured or unpacked-only package."""
        return self.run(["dpkg", "--audit"], check=False).stdout.strip()


@contextlib.contextmanager
def fresh_root(parent: Path) -> Iterator[DebRoot]:
    """A fresh copy of the minimal root, /proc mounted, the host's resolver, the .deb cache bound in."""
    root = parent / "debroot"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(base_tarball())], check=True)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    archives = CACHE / "apt-archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        subprocess.run(["mount", "--bind", str(archives), str(root / "var/cache/apt/archives")], check=True)
        deb_root = DebRoot(root)
        deb_root.run(["apt-get", "update", "-qq"])
        yield deb_root
    finally:
        for point in sorted(_mounted_under(root), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        # Never delete through a mount that is still there (it is the host's directory).
        if not _mounted_under(root):
            shutil.rmtree(root, ignore_errors=True)


def repack(deb: Path, version: str, out_dir: Path) -> Path:
    """The same package as ``version``: same bundles, the control file's version bumped, the
    payload's ``/opt/tandem/package/VERSION`` saying it (a package from before the staging had its
    bundles under ``versions/<version>/``: moved there) and the autostart
    entry (a conffile) changed by one comment line, so an upgrade meets a conffile the package
    changed -- the case where dpkg would ask, unless told ``--force-confold``. Streamed tar to tar
    (nothing unpacked on disk) and stored uncompressed: seconds, not the minute an unpack and
    rebuild take."""
    parts = out_dir / f"repack-{version}"  # the ar members must be named exactly so (deb(5))
    parts.mkdir()
    control_tar, data_tar = parts / "control.tar", parts / "data.tar"
    old = ""

    def rewrite(
        part: str, target: Path, edit: Callable[[tarfile.TarInfo, bytes | None], bytes | None]
    ) -> None:
        proc = subprocess.Popen(["dpkg-deb", part, str(deb)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        with (
            tarfile.open(fileobj=proc.stdout, mode="r|") as src,
            tarfile.open(target, "w", format=tarfile.GNU_FORMAT) as dst,
        ):
            for member in src:
                body = src.extractfile(member) if member.isfile() else None
                small = body.read() if body is not None and member.size < 4096 else None
                content = edit(member, small)
                if member.name == "./md5sums":  # it would name the old paths
                    continue
                if content is None and small is not None:
                    content = small  # read already: the stream has moved on
                if content is not None:
                    member.size = len(content)
                    dst.addfile(member, io.BytesIO(content))
                else:
                    dst.addfile(member, body)
        proc.stdout.close()
        assert proc.wait() == 0, f"dpkg-deb {part} {deb} failed"

    def control(member: tarfile.TarInfo, small: bytes | None) -> bytes | None:
        nonlocal old
        if member.name != "./control" or small is None:
            return None
        found = re.search(rb"^Version: (\S+)$", small, re.MULTILINE)
        assert found, small
        old = found.group(1).decode()
        return small.replace(found.group(0), f"Version: {version}".encode())

    def data(member: tarfile.TarInfo, small: bytes | None) -> bytes | None:
        before, after = f"./opt/tandem/versions/{old}", f"./opt/tandem/versions/{version}"
        for attr in ("name", "linkname"):
            value = getattr(member, attr)
            if value == before or value.startswith(before + "/"):
                setattr(member, attr, after + value[len(before) :])
        if member.name in (f"{after}/VERSION", "./opt/tandem/package/VERSION"):
            return f"{version}\n".encode()
        if member.name == "./etc/xdg/autostart/tandem-recorder.desktop" and small is not None:
            return small + f"# shipped with {version}\n".encode()
        return None

    rewrite("--ctrl-tarfile", control_tar, control)
    rewrite("--fsys-tarfile", data_tar, data)
    binary = parts / "debian-binary"
    binary.write_text("2.0\n")
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True)
    out = out_dir / f"tandem-agent_{version}_{arch.stdout.strip()}.deb"
    out.unlink(missing_ok=True)
    # A .deb is an ar archive of exactly these three, in this order (deb(5)).
    subprocess.run(
        ["ar", "rc", str(out), binary.name, control_tar.name, data_tar.name], check=True, cwd=parts
    )
    shutil.rmtree(parts)
    return out
