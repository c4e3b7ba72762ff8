"""The exact versions of the libraries whose internals the local runtime patches.

``sqs_server`` replaces functions inside moto and ``secantus_server`` inside SecantusDB;
each patch was written against, and is proven by tests on, one release. Another release
may have moved, renamed or fixed what a patch replaces, and a patch applied to it could
fail at random later (a lost message, a hung stop) instead of at start. So both modules
check, before they import the library, that the installed release is the one pinned in
pyproject.toml (``[project.optional-dependencies] local``, read from this package's
installed metadata), and refuse to start otherwise, saying what to install.
"""

from __future__ import annotations

import importlib.metadata
import re

PACKAGE = "recart-webhooks"
# a requirement as the metadata lists it: 'moto[server]==5.2.5; extra == "local"'
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*([^;]*)")


class PinMismatch(SystemExit):
    """The installed release of a patched library is not the pinned one. A ``SystemExit``:
    the command line prints the message alone and exits 1, without a traceback."""


def installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def pinned_version(distribution: str) -> str:
    """The ``==`` version pyproject.toml pins ``distribution`` to."""
    for line in importlib.metadata.requires(PACKAGE) or []:
        match = _REQUIREMENT.match(line)
        if match and match[1].lower() == distribution:
            spec = match[2].strip()
            if not spec.startswith("==") or "," in spec:  # one release: a patch is proven on one
                raise RuntimeError(f"pyproject.toml must pin {distribution} with ==, not {spec!r}")
            return spec[2:].strip()
    raise RuntimeError(f"pyproject.toml does not list {distribution}")


def require_pinned(distribution: str, patcher: str, extras: str = "") -> None:
    """Refuse (:class:`PinMismatch`) unless the pinned release of ``distribution`` is installed.

    ``patcher`` names what patches it, ``extras`` the extras of the install command."""
    pinned = pinned_version(distribution)
    installed = installed_version(distribution)
    if installed != pinned:
        raise PinMismatch(
            f"webhooks local's {patcher} patches {distribution} {pinned} internals; "
            f"installed {distribution} {installed or '(none)'}: "
            f"pip install '{distribution}{extras}=={pinned}'"
        )
