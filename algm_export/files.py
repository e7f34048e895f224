"""Output folders and all-or-nothing writes: single files, and whole output folders swapped in at once."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .artifacts import (
    BENCH_GRAPHS,
    FP16_INT8_PLAN,
    FP16_PLAN,
    MARKER,
    REPORT,
    TIMING_CACHE,
    TORCH_OUTPUTS,
    sidecar_path,
)
from .console import VERSION
from .errors import AlgmExportError

TOOL = "algm-export"
STAGING = re.compile(r"^\.(?P<name>.+)\.algm-export-(?P<pid>\d+)\.staging$")
# What the runs that add to a folder (verify, build, bench) write; a user's file of such a name stops them.
ADDED_FILES = {REPORT, TORCH_OUTPUTS, TIMING_CACHE, BENCH_GRAPHS, *(name for plan in (FP16_PLAN, FP16_INT8_PLAN)
                                                              for name in (plan, sidecar_path(Path(plan)).name))}
RENAME_EXCHANGE = 2  # renameat2 flag (Linux >= 3.15): swap two paths atomically
AT_FDCWD = -100
DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted",
               errno.EFBIG: "file too large for the file system"}


def prepare_output_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) if needed and check that it is writable."""
    if folder.exists() and not folder.is_dir():
        raise AlgmExportError(f"{folder}: output path exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise AlgmExportError(f"{folder}: cannot write to the output folder ({error.strerror or error})") from error
    return folder


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the result to ``path``; nothing is left on failure."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        write(temporary_path)
        temporary_path.chmod(0o666 & ~_umask())
        temporary_path.replace(path)
    finally:
        temporary_path.unlink(missing_ok=True)
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def output_path(folder: Path) -> Path:
    """The folder an output run writes: absolute, and a symbolic link followed to its target (the link stays).
    AlgmExportError for the current folder or one holding it: a folder replaced as a whole would pull the
    shell's working folder away."""
    absolute = Path(os.path.abspath(folder))
    try:
        target = absolute.resolve() if absolute.is_symlink() else absolute
        real = target.resolve()
    except (RuntimeError, OSError) as error:  # a symlink loop (RuntimeError before Python 3.13)
        raise AlgmExportError(f"{folder}: a symbolic link that cannot be followed ({error})") from error
    here = Path.cwd().resolve()
    if real == here or real in here.parents:
        raise AlgmExportError(f"{folder}: is the current folder or holds it; the output folder is replaced as a "
                              "whole, choose a subfolder (e.g. -o out)")
    return target


def check_output_target(folder: Path, carries_everything: bool = False, command: str = "export") -> None:
    """Refuse an output path that cannot become this run's folder: a missing parent, a file, the current folder.
    A run that replaces the folder's set (``carries_everything`` False: export) also refuses a folder holding
    files algm-export did not write there as an export (its marker lists what it wrote). Runs that add to a
    folder (verify, build, bench) keep every file, but refuse one that holds another marker or a file of a name
    they write (``ADDED_FILES``) that algm-export did not write (one inside our folders that they would overwrite
    stops them before the swap): they never adopt or overwrite a user's file. ``command``: the command whose
    folders this run may replace (``triton``: a model repository)."""
    folder = output_path(folder)
    parent = folder.parent
    if not parent.is_dir():
        raise AlgmExportError(f"{folder}: the parent folder {parent} does not exist")
    if folder.exists() and not folder.is_dir():
        raise AlgmExportError(f"{folder}: output path exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        listed = written_set(folder, command)
        if listed is None and (not carries_everything or (folder / MARKER).exists()):
            other = marker_command(folder)
            kind = (f"an {TOOL} {other} folder" if other is not None else
                    f"not an {TOOL} output folder (no {MARKER} written by {TOOL})")
            raise AlgmExportError(f"{folder}: not empty and {kind}; choose a new or empty folder (an output "
                                  "folder is replaced as a whole)")
        found = foreign_names(folder, command)
        foreign = sorted(found & ADDED_FILES) if carries_everything else sorted(found)
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            why = "this run would overwrite it" if carries_everything else "the folder is replaced as a whole"
            raise AlgmExportError(f"{folder}: holds {foreign[0]}{more}, which {TOOL} did not write; move it "
                                  f"away or choose another folder ({why})")
    try:  # a probe folder, removed at once: the parent must take the staging folder
        tempfile.TemporaryDirectory(dir=parent, prefix=f".{folder.name}.probe-").cleanup()
    except OSError as error:
        raise AlgmExportError(f"{folder}: cannot write to {parent} ({error.strerror or error})") from error


def foreign_names(folder: Path, command: str = "export") -> set[str]:
    """What ``folder`` holds that ``command``'s marker does not list: top-level entries by name, and inside a
    listed folder (e.g. ``bench/``) every file or folder it did not record, as ``name/relative/path``. Without
    such a marker, every entry."""
    if not folder.is_dir():
        return set()
    listed = written_set(folder, command)
    recorded = (_marker(folder) or {}).get("contents") if listed is not None else None
    recorded = recorded if isinstance(recorded, dict) else {}
    foreign = set()
    for entry in folder.iterdir():
        if entry.name == MARKER:
            continue
        if listed is None or entry.name not in listed:
            foreign.add(entry.name)
        elif isinstance(recorded.get(entry.name), list) and entry.is_dir() and not entry.is_symlink():
            foreign |= _tree(folder, entry.name) - set(recorded[entry.name])
    return foreign


def _tree(folder: Path, name: str) -> set[str]:
    """Every file, folder and link below ``folder/name`` as ``name/relative/path`` (links not followed)."""
    found = set()
    for root, folders, files in os.walk(folder / name):
        for entry in (*folders, *files):
            found.add((Path(root) / entry).relative_to(folder).as_posix())
    return found


def _marker(folder: Path) -> dict | None:
    """The marker algm-export wrote in ``folder``; None where there is none (missing, unreadable, not ours)."""
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == TOOL else None


def marker_command(folder: Path) -> str | None:
    """The algm-export command whose files ``folder`` holds (its marker); None where it has no marker of ours."""
    data = _marker(folder)
    return data.get("command") if data is not None and isinstance(data.get("command"), str) else None


def written_set(folder: Path, command: str = "export") -> set[str] | None:
    """The names of the files algm-export ``command`` wrote into ``folder`` (its marker's list); None where the
    folder has no such marker (missing, unreadable, another command's or another tool's file of that name)."""
    data = _marker(folder)
    if data is None or data.get("command") != command or not isinstance(data.get("files"), list):
        return None
    return {name for name in data["files"] if isinstance(name, str)}


def write_marker(folder: Path, command: str = "export", names: Iterable[str] | None = None,
                 exclude: Iterable[str] = ()) -> None:
    """Write the marker of ``command``'s files in ``folder`` (default: every entry of the folder, the set just
    built), atomically; the contents of each listed folder are recorded too, except the paths in ``exclude``
    (a user's files carried over)."""
    excluded = set(exclude)
    listed = sorted((set(names) if names is not None else {p.name for p in folder.iterdir()}) - {MARKER} - excluded)
    contents = {name: sorted(_tree(folder, name) - excluded) for name in listed
                if (folder / name).is_dir() and not (folder / name).is_symlink()}
    data = {"tool": TOOL, "command": command, "version": VERSION, "files": listed, **({"contents": contents}
                                                                                      if contents else {})}
    text = json.dumps(data, indent=1) + "\n"
    write_atomically(folder / MARKER, lambda path: path.write_text(text))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(folder: Path) -> None:
    """Delete staging folders of ``folder`` left by runs that were killed (SIGKILL, power loss)."""
    for entry in folder.absolute().parent.iterdir():
        found = STAGING.match(entry.name)
        if found and found["name"] == folder.name and not _process_alive(int(found["pid"])):
            shutil.rmtree(entry, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if result != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EINVAL):
            return False
        raise OSError(code, os.strerror(code), str(b))
    return True


def _swap_in(staging: Path, folder: Path) -> None:
    """Make ``staging`` the contents of ``folder``; the previous contents end in ``staging`` (removed after)."""
    if not folder.exists():
        staging.rename(folder)
        return
    if _exchange(staging, folder):
        return
    previous = staging.with_name(staging.name + ".previous")
    folder.rename(previous)
    staging.rename(folder)
    previous.rename(staging)


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Delay SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave half a cleanup behind."""
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def replaced_folder(folder: Path, keep: Iterable[str] | None = (), command: str = "export") -> Iterator[Path]:
    """Build the next contents of ``folder`` in a staging folder beside it and swap it in atomically when the
    block succeeds; on any error or interrupt the staging folder is deleted and ``folder`` keeps its previous
    contents. ``keep``: names carried over from the previous contents first (e.g. the TensorRT timing
    cache); None carries everything over (commands that add to an export: verify, build, bench).
    ``command`` names the set in its marker (``export``, or ``triton`` for a model repository).
    Yields the staging folder to write to. A full disk or an unwritable parent becomes an AlgmExportError."""
    check_output_target(folder, carries_everything=keep is None, command=command)
    folder = output_path(folder)
    foreign = foreign_names(folder, command) if keep is None else set()
    remove_stale_staging(folder)
    staging = folder.parent / f".{folder.name}.algm-export-{os.getpid()}.staging"
    try:
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            _carry_over(folder, staging, keep)
            carried = {name: _stamp(staging / name) for name in foreign}
            yield staging
            overwritten = sorted(name for name, stamp in carried.items() if _stamp(staging / name) != stamp)
            if overwritten:
                raise AlgmExportError(f"{folder}: this run would overwrite {overwritten[0]}, which {TOOL} did not "
                                      "write; the folder keeps its previous contents (move it away first)")
            write_marker(staging, command, exclude=foreign)
            with _signals_blocked():
                _swap_in(staging, folder)
        except OSError as error:
            converted = disk_error(error, folder)
            if converted is error:
                raise
            raise converted from error
    finally:
        with _signals_blocked():
            shutil.rmtree(staging, ignore_errors=True)


def _stamp(path: Path) -> tuple[int, int] | None:
    """Size and modification time of a file (None for a folder or nothing): whether a run replaced it."""
    return (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() and not path.is_symlink() else None


def _carry_over(folder: Path, staging: Path, keep: Iterable[str] | None) -> None:
    """Copy the kept entries of ``folder`` into ``staging`` (copies, not hard links: a write into the new
    set must never reach the previous one); symbolic links stay links, never followed. A named pipe, socket or
    device cannot be carried: AlgmExportError naming it, before anything is built."""
    if not folder.is_dir():
        return
    names = [p.name for p in folder.iterdir()] if keep is None else [n for n in keep if (folder / n).exists()]
    for name in names:
        source, target = folder / name, staging / name
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        elif source.is_dir():
            try:
                shutil.copytree(source, target, symlinks=True)
            except shutil.Error as error:  # a pipe or socket inside the folder
                raise AlgmExportError(f"{source}: holds something that is not a file, folder or link; move it "
                                      "away first") from error
        elif source.is_file():
            shutil.copy2(source, target)
        else:
            raise AlgmExportError(f"{source}: not a file, folder or link (a pipe, socket or device); move it away "
                                  "first")


def disk_error(error: OSError, folder: Path) -> Exception:
    """An AlgmExportError for a write that the file system refused (full disk, quota, read-only...);
    other OSErrors are returned unchanged."""
    if error.errno not in DISK_ERRORS:
        return error
    return AlgmExportError(f"{folder}: {DISK_ERRORS[error.errno]} while writing "
                           f"{Path(error.filename).name if error.filename else 'the output'}; "
                           "the folder keeps its previous contents")
