"""trainlab's HTTP service, store and command line. Importing this package never imports torch."""
