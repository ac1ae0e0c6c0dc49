"""Developer tools (screenshots, demos); not used by the app at run time."""
