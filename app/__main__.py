"""`python -m app` runs the agentdeck CLI."""

from app.cli import entry

if __name__ == "__main__":
    entry()
