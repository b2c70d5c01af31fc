"""Wire formats shared by more than one layer, apart from the AEAD
primitive: each module reads and writes one text or binary format."""
