"""The ``synod`` command: one sub-command group per system."""
