class DemoError(ValueError):
    """A demo-domain operation was refused; the message says why."""
