"""The node's RDF side: the radbank application ontology and the SHACL shapes of non-DICOM
submissions (package data under `ontology/`), and the names RDF is written with
(`vocabulary`: namespaces, the IRIs of subjects, projects and DICOM objects, units).

docs/ontology.md is the reference; tools/export_ontology_docs.py writes it from the Turtle.
"""
