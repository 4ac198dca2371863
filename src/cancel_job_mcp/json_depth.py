"""How deep a JSON text nests, read from its brackets: the one nesting check of the server.

Each caller names its own limit beside the JSON it reads (a client's message in stdio_lines.py, a
provider's answer in backends/http/answer.py).
"""

from __future__ import annotations

import re
from itertools import accumulate

_OTHER_BYTES = bytes(byte for byte in range(256) if byte not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')
# An opening bracket as the signed byte +1, a closing one as -1: their running sum is the depth.
_AS_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def nesting_exceeds(text: str, limit: int) -> bool:
    """True when the valid JSON `text` nests lists and objects more than `limit` levels (a scalar is
    0 levels, `[]` one, `[{}]` two).

    Read from the brackets outside strings, in a few passes in C and in time linear in the text,
    whatever the depth, not by walking the decoded value. Every backslash of valid JSON starts an
    escape, so once escaped backslashes and quotes are gone, what lies between two quotes is a
    string; two quotes with nothing kept between them (an empty string, or the end of one and the
    start of the next) can go first. The deepest level is then the highest running sum of the
    brackets left.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    unescaped = text.replace("\\\\", "").replace('\\"', "").encode("utf-8", "surrogatepass")
    quotes_and_brackets = unescaped.translate(None, _OTHER_BYTES).replace(b'""', b"")
    steps = memoryview(_STRING.sub(b"", quotes_and_brackets).translate(_AS_STEPS)).cast("b")
    return max(accumulate(steps), default=0) > limit
