"""A stand-in for a web browser in OAuth tests: open the URL it is given and follow every redirect.

Set as $BROWSER ("python browser.py %s"): Python's webbrowser module then runs it for the
authorization URL; the authorization server approves at once and redirects to agentdeck's loopback
callback. `--log FILE` appends each URL opened, so a test can check what the browser was sent to.
"""

from __future__ import annotations

import sys
import urllib.request


def main() -> None:
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--log":
        with open(args[1], "a", encoding="utf-8") as fh:
            fh.write(args[2] + "\n")
        args = args[2:]
    with urllib.request.urlopen(args[0], timeout=30) as response:  # follows the 302 to the callback
        response.read()


if __name__ == "__main__":
    main()
