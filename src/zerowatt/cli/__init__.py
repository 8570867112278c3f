"""The ``zerowatt`` command line: a thin layer over the library, one module per capability."""
