"""DICOM networking: remote nodes, the C-STORE listener, and SCU operations (echo, send)."""
