"""Storage object names: a blob or directory URL as the subject Event Grid gives the object, and the
directories above a name. Pure string work; imports nothing of the package.

A subject reads `/blobServices/default/containers/{container}/blobs/{path}`; a URL reads
`https://{account}.blob.core.windows.net/{container}/{path}` (or `.dfs.`, or an emulator's
`http://host:port/{account}/{container}/{path}`), percent-encoded where the name needs it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

CONTAINERS = "/blobServices/default/containers/"
BLOBS = "/blobs/"


def subject_for_url(url: object, like: str | None = None) -> str | None:
    """The subject naming the object at `url`, or None when it names none.

    `like` is a subject of the same account (the event's own): an emulator's URL carries the account as its
    first path segment, which a subject does not, so the container is found as the first segment that `like`'s
    container equals when the host is not an Azure one."""
    if not isinstance(url, str) or not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    segments = unquote(parts.path).lstrip("/").split("/", 1)
    host = parts.hostname or ""
    if not host.endswith(".core.windows.net") and like is not None and len(segments) == 2:
        container = container_of(like)
        if container is not None and segments[0] != container and segments[1].startswith(container + "/"):
            segments = segments[1].split("/", 1)  # {account}/{container}/{path}
    if len(segments) != 2 or not segments[0] or not segments[1].strip("/"):
        return None
    return f"{CONTAINERS}{segments[0]}{BLOBS}{segments[1].strip('/')}"


def container_of(subject: str) -> str | None:
    if not subject.startswith(CONTAINERS):
        return None
    container, sep, _ = subject[len(CONTAINERS) :].partition(BLOBS.rstrip("/"))
    return container if sep else None


def ancestors(subject: str) -> list[str]:
    """The directories above a blob or directory name, nearest last: `.../blobs/a/b/c` -> `.../blobs/a`,
    `.../blobs/a/b`. A name outside the blob namespace has none."""
    at = subject.find(BLOBS, len(CONTAINERS) - 1) if subject.startswith(CONTAINERS) else -1
    if at < 0:
        return []
    start = at + len(BLOBS)
    out = []
    cut = subject.find("/", start)
    while cut > start:
        out.append(subject[:cut])
        cut = subject.find("/", cut + 1)
    return out


def under(name: str, directory: str) -> str | None:
    """`name`'s path relative to `directory` when it lies beneath it, else None."""
    if len(name) > len(directory) + 1 and name.startswith(directory) and name[len(directory)] == "/":
        return name[len(directory) + 1 :]
    return None
