"""The admin password: what survives the trip through harbor.yml, Harbor's prepare and Compose's env-file rules."""

from __future__ import annotations

import re

# harbor_admin_password in Harbor's harbor.yml.tmpl (v2.15.2): every scanner knows it.
PUBLISHED_DEFAULTS = frozenset({"harbor12345"})


def admin_password_problem(password: object) -> str | None:
    """Why an admin password cannot be used as given, or None.

    The value travels harbor.yml (exact: YAML quoting is the serialiser's) -> Harbor's `prepare`,
    which writes `HARBOR_ADMIN_PASSWORD=<value>` unquoted into core's env file (templates/core/
    env.jinja) -> Docker Compose, which reads that file with dotenv rules (compose-go dotenv/
    parser.go, extractVarValue): spaces around the value are trimmed, a leading quote starts a
    quoted value, ` #` starts a comment, `$` is interpolated, a line break ends the value. Any of
    these would make Harbor's password differ from the configured one, and every API call then
    gets 401. Printable ASCII only: the env file's encoding follows the prepare container's locale,
    which cannot be proven here.
    """
    if not isinstance(password, str):
        return "must be a string"
    if password.casefold() in PUBLISHED_DEFAULTS:
        return "is Harbor's published default (harbor.yml.tmpl), which anyone can log in with: choose your own"
    if not 8 <= len(password) <= 128 or not all(re.search(pattern, password) for pattern in (r"[A-Z]", r"[a-z]", r"[0-9]")):
        return "does not meet Harbor's rule (8 to 128 characters with upper case, lower case and a digit)"
    if not all(" " <= char <= "~" for char in password):
        return (
            "may hold printable ASCII characters only (no line breaks, tabs, control or non-ASCII characters): "
            "Harbor reads it from an env file line"
        )
    if password != password.strip():
        return "must not start or end with a space: compose trims spaces around a value in Harbor's env file"
    if password[0] in "'\"":
        return "must not start with a quote: compose reads a value starting with a quote as quoted in Harbor's env file"
    if " #" in password:
        return "must not contain ' #': compose reads the rest of the line as a comment in Harbor's env file"
    if "$" in password:
        return "must not contain '$': compose interpolates it in Harbor's env file"
    return None
