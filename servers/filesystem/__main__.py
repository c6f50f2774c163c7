"""`python -m servers.filesystem --root DIR`."""

from servers.filesystem.server import main

if __name__ == "__main__":
    main()
