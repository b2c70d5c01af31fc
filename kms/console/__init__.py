"""The web console: kms.console.app serves it under /console/ on the
server's own port (kms server --no-console turns it off)."""
