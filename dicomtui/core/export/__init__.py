"""Export: database items and volumes written out (h16e owns this file; this placeholder lets h16v's branch build
alone: at the merge, keep h16e's version). Modules are imported by their full path."""
