"""Independent DICOM peers (Orthanc, ...) run on loopback by tests and benchmarks."""
