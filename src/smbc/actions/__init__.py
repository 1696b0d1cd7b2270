"""One service function per user action, called by both the dashboard and the CLI."""
