"""Tools for working on augbench itself; nothing here is imported by the package's other modules."""
