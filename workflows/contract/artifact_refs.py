"""How a large value stored outside history is referred to.

Activities store outputs over the run's offload threshold in the artifact store
(`activities/artifacts.py`); the workflow keeps a stub `{…small fields, "$artifact": {"uri",
"bytes", "fields"}}` and hands references onwards (`{"$artifact_ref": URI, "path": […]}`). In
rendered text a stored value is the token `⟦artifact:URI#path⟧`, which only the activity that
reads it expands.
"""

from __future__ import annotations

import re
from typing import Any

ARTIFACT_KEY = "$artifact"
ARTIFACT_REF_KEY = "$artifact_ref"
#: Keys only iterloop writes; data arriving from outside (vars, inputs, answers) may not use them.
RESERVED_KEYS = frozenset((ARTIFACT_KEY, ARTIFACT_REF_KEY))
TOKEN_OPENING = "⟦artifact:"
ARTIFACT_TOKEN_RE = re.compile(r"⟦artifact:([^⟧]+)⟧")


def artifact_token(value: Any) -> str | None:
    """The text token standing for a stored value, if ``value`` is a stub or a reference."""
    if isinstance(value, dict):
        if ARTIFACT_REF_KEY in value:
            return f"⟦artifact:{value[ARTIFACT_REF_KEY]}#{'.'.join(value.get('path', []))}⟧"
        stub = value.get(ARTIFACT_KEY)
        if isinstance(stub, dict) and "uri" in stub:
            return f"⟦artifact:{stub['uri']}#⟧"
    return None

