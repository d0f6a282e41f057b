"""The services: the only code that changes tickets and contacts."""
