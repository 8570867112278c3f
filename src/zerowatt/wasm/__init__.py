"""See the package docstring of zerowatt for what this subpackage holds."""
