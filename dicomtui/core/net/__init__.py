"""DICOM networking over DIMSE: node presets, the wire codec, our lean C-STORE SCP and SCU, the listener, and the
operations echo, send, query, retrieve and doctor (docs/architecture.md shows their layers)."""
