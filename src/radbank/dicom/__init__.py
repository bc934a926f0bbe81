"""Pure DICOM logic: de-identification, dose extraction, quality rules. No I/O here."""
