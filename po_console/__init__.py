"""The `po` CLI and the Textual console. Imports pipeline/ and state/."""
